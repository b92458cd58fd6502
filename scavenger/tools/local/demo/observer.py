"""What the demo reports as it goes: the stages, the seeding, the sweep's progress."""

from __future__ import annotations

from typing import Protocol


class DemoObserver(Protocol):
    """What the demo reports as it goes (the CLI draws progress bars from it)."""

    def stage(self, text: str) -> None: ...
    def seeding(self, done: int, total: int) -> None: ...
    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None: ...


class QuietObserver:
    def stage(self, text: str) -> None:
        pass

    def seeding(self, done: int, total: int) -> None:
        pass

    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None:
        pass
