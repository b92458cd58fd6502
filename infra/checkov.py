"""checkov suppressions, each with its reason, on the resource it concerns.

checkov reads ``Metadata.checkov.skip`` (``[{id, comment}]``) from a CloudFormation resource;
a skip is recorded in its report with the comment, as cdk-nag's acknowledgements are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

METADATA_KEY = "checkov"

ENV_NOT_SECRET = (
    "The environment holds no secret (table and queue names, the sweep definitions); Lambda "
    "encrypts it at rest with an AWS managed key, and a customer managed key would only add "
    "a key to administer"
)
NO_VPC = (
    "The functions call only AWS APIs (DynamoDB, SQS, CloudWatch Logs) over TLS with IAM "
    "and reach nothing inside a VPC; a VPC would need NAT or VPC endpoints for no gain"
)
LOGS_ENCRYPTED = (
    "CloudWatch Logs encrypts every log group at rest by default; the logs hold counts, "
    "run ids and errors, never item contents, so a KMS key (with a key policy for the logs "
    "service) adds administration without protecting anything more"
)
SQS_MANAGED_SSE = (
    "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); this check looks only "
    "for a KMS key. The messages hold run ids, segment numbers and cursors; a KMS key would "
    "add a key policy and a KMS request per message"
)


def skip_checks(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Suppress checkov checks ``{id: reason}`` on ``construct``'s CloudFormation resource."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    existing: dict[str, Any] = resource.get_metadata(METADATA_KEY) or {}
    skips = list(existing.get("skip", []))
    skips += [{"id": check, "comment": reason} for check, reason in reasons.items()]
    resource.add_metadata(METADATA_KEY, {"skip": skips})
