"""What runs on an operator's machine, never in Lambda: the ``scavenger`` CLI and its
commands, the operator workflows (``ops``), the local emulators and fleet with chaos
(``local``), the benchmarks (``bench``) and provisioning. It may import the runtime
part of ``scavenger``; nothing in the runtime part imports it
(``tests/unit/test_layers.py``)."""
