"""Verification: what the C2PA manifest of a file (embedded, or in its sidecar) says, and whether it holds.

A local certificate is on no C2PA trust list: its signatures verify as *valid and intact* but *not
trusted*. :func:`verify_file` keeps those apart from *tampered / invalid*; pass ``trust_anchors`` (or
set ``$MASQUERADE_C2PA_TRUST_ANCHORS``) to trust a CA of your own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .credentials import own_serials
from .manifest import SWAP_ASSERTION, ProvenanceError, c2pa_library, c2pa_settings
from .signing import can_embed, mime_for_path, sidecar_path

ENV_TRUST = "MASQUERADE_C2PA_TRUST_ANCHORS"

# validation codes about the signer's credentials, not about the integrity of content or manifest
_CREDENTIAL_PREFIXES = ("signingCredential.", "timeStamp.")


@dataclass(frozen=True)
class C2paReport:
    """What :func:`verify_file` found.

    ``valid``: a manifest is present, its signature verifies and the content and manifest are intact
    (c2pa validation state ``Valid`` or ``Trusted``). ``trusted``: besides, the signer chains to a
    trust anchor (state ``Trusted``). ``tampered``: a manifest is present but the content or the
    manifest changed after signing, or it cannot be parsed. A valid but untrusted report is what a
    masquerade local key gives (``own_key`` tells whether the signer is this machine's configured key).
    """

    present: bool
    valid: bool
    trusted: bool
    signer: str | None
    tampered: bool
    issues: list[str]
    manifest: dict[str, Any] | None
    state: str | None = None
    own_key: bool = False
    sidecar: Path | None = None
    swapper: str | None = None
    content_id: str | None = None
    timestamp: str | None = None

    @property
    def swap(self) -> dict[str, Any] | None:
        """The ``org.masquerade.swap`` assertion's data, if the manifest has one."""
        return _assertion(self.manifest, SWAP_ASSERTION)

    def summary(self) -> str:
        """One line for people: valid / valid but untrusted / tampered / absent."""
        where = f" (sidecar {self.sidecar.name})" if self.sidecar else ""
        if not self.present:
            why = f": {self.issues[0]}" if self.issues else ""
            return f"C2PA: no content credentials{why}"
        who = f"signed by {self.signer}" if self.signer else "signed"
        if self.tampered:
            broken = [i for i in self.issues if not _is_credential(i)] or self.issues
            return f"C2PA: TAMPERED / INVALID{where}: {'; '.join(broken) or 'manifest unreadable'}"
        if not self.valid:
            return f"C2PA: INVALID{where}, {who}: {'; '.join(self.issues)}"
        if self.trusted:
            return f"C2PA: valid and trusted{where}, content intact; {who}"
        local = ", this machine's masquerade key," if self.own_key else ""
        return f"C2PA: valid{where}, content intact; {who}{local} not on a trust list (untrusted signer)"


def _assertion(manifest: Mapping[str, Any] | None, label: str) -> dict[str, Any] | None:
    if not manifest:
        return None
    for a in manifest.get("assertions") or []:
        if a.get("label") == label and isinstance(a.get("data"), dict):
            return dict(a["data"])
    return None


def _read_anchors(trust_anchors: str | os.PathLike[str] | None) -> str | None:
    src = trust_anchors if trust_anchors is not None else os.environ.get(ENV_TRUST)
    if not src:
        return None
    try:
        return Path(src).expanduser().read_text()
    except OSError as exc:
        raise ProvenanceError(f"cannot read the C2PA trust anchors {src}: {exc}") from exc


def verify_file(
    path: str | os.PathLike[str],
    *,
    trust_anchors: str | os.PathLike[str] | None = None,
    sidecar: str | os.PathLike[str] | None = None,
) -> C2paReport:
    """Check the C2PA manifest of a file: embedded, else in its sidecar (``name.c2pa``).

    ``trust_anchors``: a PEM file of CA certificates to trust (default ``$MASQUERADE_C2PA_TRUST_ANCHORS``);
    without it nothing a masquerade local key signs is trusted, though it can be valid. ``sidecar``:
    check this detached manifest store instead of looking in the file. A missing file raises
    :class:`~masquerade.errors.InputError`, an unreadable trust-anchor or sidecar file
    :class:`ProvenanceError`; whatever is wrong with the media or its manifest is reported, not raised.
    """
    c2pa = c2pa_library()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    mime = mime_for_path(p)
    anchors = _read_anchors(trust_anchors)
    side = Path(sidecar) if sidecar is not None else None

    def read(manifest_data: bytes | None) -> dict[str, Any]:
        with (
            c2pa.Context.from_dict(c2pa_settings(anchors)) as ctx,
            open(p, "rb") as fh,
            c2pa.Reader(mime, fh, manifest_data, context=ctx) as reader,
        ):
            return json.loads(reader.json())

    store: dict[str, Any] | None = None
    absent_why = "no C2PA manifest in the file"
    used_sidecar: Path | None = None
    try:
        if side is None:
            try:
                store = read(None)
            except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported) as exc:
                if isinstance(exc, c2pa.C2paError.NotSupported):
                    absent_why = (
                        f"c2pa does not recognise the file as {mime}"
                        if mime and can_embed(mime)
                        else f"c2pa cannot read manifests embedded in {mime or 'this kind of'} files"
                    )
                side = sidecar_path(p) if sidecar_path(p).is_file() and sidecar_path(p) != p else None
        if store is None and side is not None:
            used_sidecar = side
            try:
                store = read(side.read_bytes())
            except OSError as exc:
                raise ProvenanceError(f"cannot read the C2PA sidecar {side}: {exc}") from exc
    except c2pa.C2paError.ManifestNotFound:
        store = None
    except c2pa.C2paError as exc:
        if used_sidecar is None and not _has_jumbf(p):
            # a damaged file without any manifest: nothing was tampered with, there is just nothing
            return C2paReport(
                False, False, False, None, False, [f"c2pa could not parse the file: {exc}"], None
            )
        # something manifest-like is there but does not parse or verify at all
        return C2paReport(
            present=True,
            valid=False,
            trusted=False,
            signer=None,
            tampered=True,
            issues=[f"manifest unreadable: {exc}"],
            manifest=None,
            state="Invalid",
            sidecar=used_sidecar,
        )
    if store is None:
        return C2paReport(False, False, False, None, False, [absent_why], None)
    return _report(store, used_sidecar)


def _has_jumbf(path: Path, chunk: int = 1 << 20) -> bool:
    """Whether the file holds a C2PA manifest store's JUMBF label anywhere (streamed, not loaded)."""
    needle, tail = b"c2pa", b""
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                if needle in tail + block:
                    return True
                tail = block[-(len(needle) - 1) :]
    except OSError:
        return False
    return False


def _report(store: Mapping[str, Any], sidecar: Path | None) -> C2paReport:
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) if label else None
    state = store.get("validation_state")
    statuses = list(store.get("validation_status") or [])
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = list(results.get("failure") or [])
    seen = {(s.get("code"), s.get("url")) for s in failures}
    failures += [s for s in statuses if (s.get("code"), s.get("url")) not in seen]
    if state is None:  # older stores: no state, only failures
        state = "Invalid" if any(not _is_credential(s.get("code", "")) for s in failures) else "Valid"
    valid = manifest is not None and state in ("Valid", "Trusted")
    trusted = manifest is not None and state == "Trusted"
    integrity_failures = [s for s in failures if not _is_credential(s.get("code", ""))]
    tampered = manifest is None or (not valid and bool(integrity_failures))
    issues = [_issue(s) for s in failures]
    if manifest is None:
        issues.append("the manifest store has no active manifest")

    sig = (manifest or {}).get("signature_info") or {}
    cn, org = sig.get("common_name"), sig.get("issuer")
    signer = f"{cn} ({org})" if cn and org else (cn or org)
    swap = _assertion(manifest, SWAP_ASSERTION) or {}
    serial = sig.get("cert_serial_number")
    own = bool(serial) and str(serial) in own_serials()
    return C2paReport(
        present=True,
        valid=valid,
        trusted=trusted,
        signer=signer,
        tampered=tampered,
        issues=issues,
        manifest=dict(manifest) if manifest is not None else None,
        state=state,
        own_key=own,
        sidecar=sidecar,
        swapper=_str_or_none(swap.get("swapper")),
        content_id=_str_or_none(swap.get("content_id")),
        timestamp=_str_or_none(swap.get("timestamp")),
    )


def _is_credential(code: str) -> bool:
    return code.startswith(_CREDENTIAL_PREFIXES)


def _issue(status: Mapping[str, Any]) -> str:
    code, text = status.get("code", "?"), status.get("explanation") or ""
    if code == "signingCredential.untrusted":
        text = "the signing certificate is not on a C2PA trust list (a masquerade local key never is)"
    return f"{code}: {text}" if text else str(code)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
