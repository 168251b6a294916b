"""Signed C2PA content credentials on masquerade's outputs, and their verification: the public names.

Every image and video masquerade writes can carry a C2PA manifest that says what it is (made by a
trained algorithm, by which tool and swapper, when, under which content id), signed with an X.509
certificate and its key, so any change to the pixels or to the manifest afterwards is detected by
:func:`verify_file`. The work is done in :mod:`.manifest` (what the manifest records),
:mod:`.credentials` (the certificate and key to sign with), :mod:`.signing` (embedded manifests and
sidecars) and :mod:`.verification`; this module gathers their public names.
"""

from __future__ import annotations

from .credentials import SigningConfig, config_dir, local_signing_config, resolve_signing_config
from .manifest import DIGITAL_SOURCE_TYPE, SWAP_ASSERTION, ProvenanceError, ProvenanceInfo, new_content_id
from .signing import (
    UnsupportedFormat,
    can_embed,
    mime_for_path,
    sidecar_path,
    sign_bytes,
    sign_file,
    sign_sidecar,
    write_sidecar,
)
from .verification import C2paReport, verify_file

__all__ = [
    "DIGITAL_SOURCE_TYPE",
    "SWAP_ASSERTION",
    "C2paReport",
    "ProvenanceError",
    "ProvenanceInfo",
    "SigningConfig",
    "UnsupportedFormat",
    "can_embed",
    "config_dir",
    "local_signing_config",
    "mime_for_path",
    "new_content_id",
    "resolve_signing_config",
    "sidecar_path",
    "sign_bytes",
    "sign_file",
    "sign_sidecar",
    "verify_file",
    "write_sidecar",
]
