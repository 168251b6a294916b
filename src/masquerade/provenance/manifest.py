"""What a C2PA manifest on a masquerade output records, and what signing and verification share.

Every image and video masquerade writes can carry a C2PA manifest that says what it is: media made
by a trained algorithm (IPTC digital source type ``trainedAlgorithmicMedia``), by which tool and
swapper, when, and under which content id (the same id the invisible watermark carries):
:class:`ProvenanceInfo`. Signing (:mod:`.signing`) and verification (:mod:`.verification`) share its
errors and the c2pa library with masquerade's offline settings (:func:`c2pa_library`,
:func:`c2pa_settings`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..errors import MasqueradeError

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SWAP_ASSERTION = "org.masquerade.swap"


class ProvenanceError(MasqueradeError):
    """Content credentials could not be made or read (bad key / certificate, c2pa failure)."""


def c2pa_library() -> ModuleType:
    """The ``c2pa`` module (c2pa-python), imported on first use."""
    try:
        import c2pa
    except ImportError as exc:
        raise ProvenanceError("C2PA content credentials need the 'c2pa-python' package") from exc
    return c2pa


def c2pa_settings(trust_anchors: str | None = None) -> dict[str, Any]:
    """c2pa settings: offline (no remote manifests, no OCSP), no thumbnail copy of the output."""
    settings: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": True},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    return settings


def new_content_id() -> str:
    """A fresh random content id: 12 hex digits (48 bits), the form of the watermark payload's ``hex()``."""
    return secrets.token_hex(6)


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _tool_version() -> str:
    import masquerade  # late: this module may be imported while the package is still initialising

    return str(getattr(masquerade, "__version__", "unknown"))


@dataclass(frozen=True)
class ProvenanceInfo:
    """What one output's manifest records.

    ``content_id`` is shared with the watermark payload (pass ``WatermarkPayload.hex()``) so that a
    manifest and a watermark found in the same file can be matched. ``extra`` maps further assertion
    labels (e.g. ``"org.example.x"``) to JSON-serialisable data; they are signed with the rest.
    """

    swapper: str
    content_id: str = field(default_factory=new_content_id)
    tool_version: str = field(default_factory=_tool_version)
    timestamp: str = field(default_factory=_utc_now)
    title: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def manifest_definition(self) -> dict[str, Any]:
        """The c2pa manifest definition (JSON-ready dict) for this output."""
        reserved = {SWAP_ASSERTION, "c2pa.actions", "c2pa.actions.v2"}
        clash = reserved.intersection(self.extra)
        if clash:
            raise ProvenanceError(f"extra C2PA assertion labels clash with masquerade's: {sorted(clash)}")
        agent = {"name": "masquerade", "version": self.tool_version}
        action = {
            "action": "c2pa.created",
            "when": self.timestamp,
            "softwareAgent": agent,
            "digitalSourceType": DIGITAL_SOURCE_TYPE,
            "description": f"Face swap by masquerade {self.tool_version} with the {self.swapper} swapper",
            "parameters": {"org.masquerade.swapper": self.swapper},
        }
        swap = {
            "swapper": self.swapper,
            "content_id": self.content_id,
            "timestamp": self.timestamp,
            "tool": f"masquerade/{self.tool_version}",
        }
        assertions: list[dict[str, Any]] = [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": SWAP_ASSERTION, "data": swap},
        ]
        assertions += [{"label": str(k), "data": v} for k, v in self.extra.items()]
        return {
            "claim_generator_info": [agent],
            "title": self.title or f"masquerade face swap ({self.swapper})",
            "assertions": assertions,
        }
