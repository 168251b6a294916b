"""Signed C2PA content credentials on masquerade's outputs, and their verification.

Every image and video masquerade writes can carry a C2PA manifest that says what it is: media made
by a trained algorithm (IPTC digital source type ``trainedAlgorithmicMedia``), by which tool and
swapper, when, and under which content id (the same id the invisible watermark carries). The
manifest is signed with an X.509 certificate and its key, so any change to the pixels or to the
manifest afterwards is detected by :func:`verify_file`.

Signing credentials, in order of precedence:

1. a :class:`SigningConfig` passed by the caller (``cert_chain`` PEM + ``private_key`` PEM);
2. ``$MASQUERADE_C2PA_CERT`` and ``$MASQUERADE_C2PA_KEY`` (optionally ``$MASQUERADE_C2PA_ALG``);
3. a local key made on first use in ``$MASQUERADE_CONFIG/c2pa/local`` (else
   ``$XDG_CONFIG_HOME/masquerade/c2pa/local``, else ``~/.config/masquerade/c2pa/local``): a
   self-made CA (``ca.pem``; its private key is discarded) and an ES256 signing certificate issued by
   it (``chain.pem``) with its key (``key.pem``, mode 0600).

No timestamp authority is contacted (masquerade is offline), so the signing time is not
countersigned. A local certificate is on no C2PA trust list: its signatures verify as *valid and
intact* but *not trusted*. :func:`verify_file` keeps those apart from *tampered / invalid*; pass
``trust_anchors`` (or set ``$MASQUERADE_C2PA_TRUST_ANCHORS``) to trust a CA of your own.

Formats: c2pa embeds manifests in JPEG, PNG, WebP, TIFF (and GIF, AVIF, HEIC) images and in MP4,
MOV/M4V and AVI videos. For the rest (BMP, MKV, WebM) :func:`sign_bytes` / :func:`sign_file` raise
:class:`UnsupportedFormat`; :func:`write_sidecar` then writes a detached manifest store
(``name.c2pa`` beside ``name.mkv``) bound to the file's bytes by a hash, which :func:`verify_file`
finds on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import mimetypes
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, BinaryIO

from ..errors import InputError, MasqueradeError

log = logging.getLogger(__name__)

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

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SWAP_ASSERTION = "org.masquerade.swap"
SIDECAR_SUFFIX = ".c2pa"

ENV_CONFIG = "MASQUERADE_CONFIG"
ENV_CERT = "MASQUERADE_C2PA_CERT"
ENV_KEY = "MASQUERADE_C2PA_KEY"
ENV_ALG = "MASQUERADE_C2PA_ALG"
ENV_TRUST = "MASQUERADE_C2PA_TRUST_ANCHORS"

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")

# extension → MIME type for what masquerade reads and writes (mimetypes is platform-dependent)
_MIME_BY_SUFFIX: Mapping[str, str] = MappingProxyType(
    {
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".webp": "image/webp",
        ".tif": "image/tiff",
        ".tiff": "image/tiff",
        ".bmp": "image/bmp",
        ".gif": "image/gif",
        ".avif": "image/avif",
        ".heic": "image/heic",
        ".mp4": "video/mp4",
        ".m4v": "video/x-m4v",
        ".mov": "video/quicktime",
        ".avi": "video/x-msvideo",
        ".mkv": "video/x-matroska",
        ".webm": "video/webm",
        ".c2pa": "application/c2pa",
    }
)
# c2pa lists these as supported, but they are manifest stores, not media a manifest can be put in
_NOT_MEDIA = frozenset({"application/c2pa", "application/x-c2pa-manifest-store", "c2pa"})
# validation codes about the signer's credentials, not about the integrity of content or manifest
_CREDENTIAL_PREFIXES = ("signingCredential.", "timeStamp.")

_EKU_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"
_LOCAL_DAYS = 20 * 365  # no timestamp authority: validity is judged at verification time, so keep it long


class ProvenanceError(MasqueradeError):
    """Content credentials could not be made or read (bad key / certificate, c2pa failure)."""


class UnsupportedFormat(ProvenanceError):
    """c2pa cannot embed a manifest in this format: write a sidecar (:func:`write_sidecar`) or skip."""


# --------------------------------------------------------------------------------------------------
# what goes into the manifest


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


# --------------------------------------------------------------------------------------------------
# signing credentials


@dataclass(frozen=True)
class SigningConfig:
    """A certificate chain and private key (both PEM files) to sign manifests with.

    ``cert_chain`` holds the signing certificate first, then any intermediates (the root may be
    included). C2PA accepts only end-entity certificates issued by a CA (not self-signed) with the
    digitalSignature key usage and an extended key usage such as emailProtection or documentSigning.
    ``alg`` is one of :data:`ALGORITHMS`; None derives it from the key (EC P-256/384/521 → ES256/384/512,
    RSA → PS256, Ed25519). ``tsa_url`` names an RFC 3161 timestamp authority (needs the network; off
    by default).
    """

    cert_chain: Path
    private_key: Path
    alg: str | None = None
    tsa_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert_chain", Path(self.cert_chain).expanduser())
        object.__setattr__(self, "private_key", Path(self.private_key).expanduser())
        if self.alg is not None:
            alg = self.alg.strip().lower()
            if alg not in ALGORITHMS:
                raise ProvenanceError(
                    f"unknown C2PA signing algorithm {self.alg!r} (use {', '.join(ALGORITHMS)})"
                )
            object.__setattr__(self, "alg", alg)

    @classmethod
    def from_env(cls) -> SigningConfig | None:
        """``$MASQUERADE_C2PA_CERT`` + ``$MASQUERADE_C2PA_KEY`` (+ ``$MASQUERADE_C2PA_ALG``), or None."""
        cert, key = os.environ.get(ENV_CERT), os.environ.get(ENV_KEY)
        if not cert and not key:
            return None
        if not (cert and key):
            missing = ENV_KEY if cert else ENV_CERT
            raise ProvenanceError(f"{ENV_CERT} and {ENV_KEY} must be set together ({missing} is not set)")
        return cls(Path(cert), Path(key), alg=os.environ.get(ENV_ALG) or None)


@dataclass(frozen=True)
class _Credentials:
    chain_pem: bytes
    key_pem: bytes
    alg: str
    tsa_url: str | None


def config_dir() -> Path:
    """masquerade's C2PA folder: ``$MASQUERADE_CONFIG/c2pa``, else ``$XDG_CONFIG_HOME`` or ``~/.config``."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser() / "c2pa"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "masquerade" / "c2pa"


def resolve_signing_config(config: SigningConfig | None = None) -> SigningConfig:
    """The credentials to sign with: ``config``, else the environment, else the local key (made if needed)."""
    if config is not None:
        return config
    return SigningConfig.from_env() or local_signing_config()


def _x509() -> tuple[ModuleType, ModuleType, ModuleType]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
    except ImportError as exc:  # pragma: no cover - cryptography comes with c2pa-python's users
        raise ProvenanceError(
            "C2PA signing needs the 'cryptography' package (pip install cryptography)"
        ) from exc
    return x509, hashes, serialization


def local_signing_config(directory: str | os.PathLike[str] | None = None) -> SigningConfig:
    """The local signing key and certificate, made on first use (and again once expired)."""
    root = Path(directory) if directory is not None else config_dir() / "local"
    chain, key = root / "chain.pem", root / "key.pem"
    if chain.is_file() and key.is_file():
        if not _expired(chain):
            return SigningConfig(chain, key, alg="es256")
        stale = root.with_name(f"{root.name}.expired-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
        log.warning("the local C2PA signing certificate %s has expired; moving it to %s", chain, stale)
        with contextlib.suppress(OSError):
            os.replace(root, stale)
    _make_local_credentials(root)
    return SigningConfig(chain, key, alg="es256")


def _expired(chain: Path) -> bool:
    x509, _, _ = _x509()
    try:
        cert = x509.load_pem_x509_certificate(chain.read_bytes())
    except (OSError, ValueError):
        return False  # let signing report what is wrong with it
    return cert.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def _make_local_credentials(root: Path) -> None:
    """Write a CA cert, a signing chain and its key into ``root``, atomically (a racing process may win)."""
    x509, hashes, serialization = _x509()
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=_LOCAL_DAYS)
    tag = secrets.token_hex(4)
    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "masquerade (local, untrusted)")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"masquerade local CA {tag}"), org])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(x509, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"masquerade local signer {tag}"), org])
    eku = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ObjectIdentifier(_EKU_DOCUMENT_SIGNING)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(x509, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # the CA's private key is thrown away: nothing else can ever be issued under this local CA

    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        # written complete in a private folder, then renamed into place in one step
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))  # mode 0700
    except OSError as exc:
        raise ProvenanceError(f"cannot write the local C2PA signing key to {root}: {exc}") from exc
    try:
        _write_new(tmp / "key.pem", key_pem, 0o600)
        _write_new(tmp / "chain.pem", cert.public_bytes(pem) + ca.public_bytes(pem), 0o644)
        _write_new(tmp / "ca.pem", ca.public_bytes(pem), 0o644)
        os.chmod(tmp, 0o700)
        try:
            os.rename(tmp, root)
        except OSError:
            if (root / "key.pem").is_file() and (root / "chain.pem").is_file():
                log.debug("another process made the local C2PA key first; using %s", root)
                return
            raise
        log.info(
            "made a local C2PA signing key in %s (signer %r; nobody trusts it unless they add its ca.pem)",
            root, f"masquerade local signer {tag}",
        )  # fmt: skip
    except OSError as exc:
        raise ProvenanceError(f"cannot write the local C2PA signing key to {root}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when the rename succeeded


def _key_usage(x509: ModuleType, cert_sign: bool) -> Any:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # os.open's mode is masked by the umask


def _load_credentials(config: SigningConfig) -> _Credentials:
    """Read and check a config's PEM files; errors name the file and what is wrong with it."""
    x509, _, serialization = _x509()
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        chain_pem = config.cert_chain.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read the C2PA certificate chain {config.cert_chain}: {exc}") from exc
    try:
        key_pem = config.private_key.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read the C2PA private key {config.private_key}: {exc}") from exc
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise ProvenanceError(f"{config.cert_chain}: not a PEM certificate chain ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ProvenanceError(f"{config.private_key}: not an unencrypted PEM private key ({exc})") from exc
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if certs[0].public_key().public_bytes(der, pub) != key.public_key().public_bytes(der, pub):
        raise ProvenanceError(
            f"{config.private_key} does not belong to the first certificate in {config.cert_chain}"
        )
    problems = _profile_problems(certs[0], x509)
    if problems:
        raise ProvenanceError(
            f"{config.cert_chain}: C2PA will not sign with this certificate: {'; '.join(problems)}"
        )
    if config.private_key.stat().st_mode & 0o077 and os.name == "posix":
        log.warning("C2PA private key %s is readable by other users (chmod 600 it)", config.private_key)

    alg = config.alg
    if alg is None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
        elif isinstance(key, rsa.RSAPrivateKey):
            alg = "ps256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            alg = "ed25519"
        if alg is None:
            raise ProvenanceError(f"{config.private_key}: C2PA cannot sign with a {type(key).__name__} key")
    return _Credentials(chain_pem, key_pem, alg, config.tsa_url)


def _profile_problems(cert: Any, x509: ModuleType) -> list[str]:
    """The C2PA certificate-profile rules a signing certificate breaks (c2pa only says 'invalid')."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    problems = []
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        first, last = cert.not_valid_before_utc, cert.not_valid_after_utc
        problems.append(f"it is not valid now (valid {first:%Y-%m-%d} to {last:%Y-%m-%d})")
    if cert.subject == cert.issuer:
        problems.append("it is self-signed (it must be issued by a CA)")
    with contextlib.suppress(x509.ExtensionNotFound):
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("it is a CA certificate")
    try:
        if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            problems.append("its key usage lacks digitalSignature")
    except x509.ExtensionNotFound:
        problems.append("it has no key usage extension (digitalSignature is required)")
    try:
        ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus:
            problems.append("its extended key usage must not be anyExtendedKeyUsage")
    except x509.ExtensionNotFound:
        problems.append("it has no extended key usage (e.g. emailProtection or documentSigning)")
    return problems


# --------------------------------------------------------------------------------------------------
# signing


def _c2pa() -> ModuleType:
    try:
        import c2pa
    except ImportError as exc:
        raise ProvenanceError("C2PA content credentials need the 'c2pa-python' package") from exc
    return c2pa


def _settings(trust_anchors: str | None = None) -> dict[str, Any]:
    """c2pa settings: offline (no remote manifests, no OCSP), no thumbnail copy of the output."""
    settings: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": True},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    return settings


def mime_for_path(path: str | os.PathLike[str]) -> str | None:
    """The MIME type for a file name's extension, or None when unknown."""
    suffix = Path(path).suffix.lower()
    return _MIME_BY_SUFFIX.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0]


def _normalize_mime(mime: str) -> str:
    """Lower-case; ``image/jpg`` → ``image/jpeg``; an extension (``.png``) → its MIME type."""
    mime = mime.strip().lower()
    if "/" not in mime:
        return _MIME_BY_SUFFIX.get(mime if mime.startswith(".") else f".{mime}", mime)
    return {"image/jpg": "image/jpeg", "image/x-png": "image/png", "video/mov": "video/quicktime"}.get(
        mime, mime
    )


def can_embed(mime: str) -> bool:
    """Whether c2pa can embed a manifest in media of this MIME type."""
    mime = _normalize_mime(mime)
    if mime in _NOT_MEDIA:
        return False
    return mime in _c2pa().Builder.get_supported_mime_types()


def _sign(
    source: BinaryIO,
    dest: BinaryIO,
    mime: str,
    info: ProvenanceInfo,
    config: SigningConfig | None,
    embed: bool,
) -> bytes:
    c2pa = _c2pa()
    creds = _load_credentials(resolve_signing_config(config))
    manifest = info.manifest_definition()
    try:
        with (
            c2pa.Context.from_dict(_settings()) as ctx,
            c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(creds.alg, creds.chain_pem, creds.key_pem, creds.tsa_url)
            ) as signer,
            c2pa.Builder(manifest, context=ctx) as builder,
        ):
            if not embed:
                builder.set_no_embed()
            return bytes(builder.sign(signer, mime, source, dest))
    except c2pa.C2paError.NotSupported as exc:
        raise UnsupportedFormat(f"c2pa cannot put a manifest in {mime} media") from exc
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"C2PA signing failed ({mime}): {exc}") from exc


def _require_embeddable(mime: str) -> str:
    mime = _normalize_mime(mime)
    if not can_embed(mime):
        raise UnsupportedFormat(
            f"c2pa cannot embed a manifest in {mime} media (write a {SIDECAR_SUFFIX} sidecar instead)"
        )
    return mime


def sign_bytes(data: bytes, mime: str, info: ProvenanceInfo, config: SigningConfig | None = None) -> bytes:
    """Return the encoded image ``data`` with a signed C2PA manifest embedded.

    Raises :class:`UnsupportedFormat` for formats c2pa cannot embed in (e.g. ``image/bmp``); see
    :func:`sign_sidecar`. Other failures (unusable key or certificate) raise :class:`ProvenanceError`.
    """
    mime = _require_embeddable(mime)
    out = io.BytesIO()
    _sign(io.BytesIO(data), out, mime, info, config, embed=True)
    return out.getvalue()


def sign_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    mime: str | None,
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
) -> Path:
    """Write ``src_path`` with a signed C2PA manifest embedded to ``dst_path`` (which may be ``src_path``).

    Meant for videos (``video/mp4``, ``video/quicktime``, ``video/x-m4v``, ``video/x-msvideo``) and
    works for images too; the file is streamed, not read into memory. ``mime`` None takes it from the
    extension of ``dst_path`` (else ``src_path``). ``dst_path`` is replaced atomically, so it is left
    untouched when signing fails. Raises :class:`UnsupportedFormat` for ``video/x-matroska`` and
    ``video/webm`` (see :func:`write_sidecar`).
    """
    src, dst = Path(src_path), Path(dst_path)
    mime = mime or mime_for_path(dst) or mime_for_path(src)
    if not mime:
        raise UnsupportedFormat(f"{dst}: cannot tell the media type from the extension")
    mime = _require_embeddable(mime)
    parent = dst.parent if str(dst.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".c2pa-part" + dst.suffix, dir=parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fout, open(src, "rb") as fin:
            _sign(fin, fout, mime, info, config, embed=True)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copymode(dst if dst.exists() else src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise ProvenanceError(f"cannot sign {src} into {dst}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return dst


class _Discard(io.RawIOBase):
    """A seekable sink: c2pa copies the asset to its destination even when it does not embed."""

    def __init__(self) -> None:
        self._pos = 0
        self._end = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return 0

    def write(self, b: Any) -> int:
        n = len(memoryview(b))
        self._pos += n
        self._end = max(self._end, self._pos)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._end}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def sign_sidecar(
    media: bytes | str | os.PathLike[str],
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
    mime: str | None = None,
) -> bytes:
    """A signed, detached C2PA manifest store for ``media`` (bytes or a file), bound to its exact bytes.

    Works for any format (the whole file is hashed), including those c2pa cannot embed in (BMP, MKV,
    WebM). Store it as :func:`sidecar_path` of the media file (see :func:`write_sidecar`).
    """
    if isinstance(media, bytes | bytearray):
        mime = mime or "application/octet-stream"
        return _sign(io.BytesIO(bytes(media)), _Discard(), mime, info, config, embed=False)
    path = Path(media)
    mime = mime or mime_for_path(path) or "application/octet-stream"
    try:
        with open(path, "rb") as fh:
            return _sign(fh, _Discard(), mime, info, config, embed=False)
    except OSError as exc:
        raise ProvenanceError(f"cannot read {path} to sign it: {exc}") from exc


def sidecar_path(media_path: str | os.PathLike[str]) -> Path:
    """Where a media file's detached manifest lives: the same name with ``.c2pa`` (c2patool's convention)."""
    return Path(media_path).with_suffix(SIDECAR_SUFFIX)


def write_sidecar(
    media_path: str | os.PathLike[str],
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
    *,
    mime: str | None = None,
    sidecar: str | os.PathLike[str] | None = None,
) -> Path:
    """Sign ``media_path`` into a detached manifest written to ``sidecar`` (default :func:`sidecar_path`).

    For a file written to a temporary name first, sign the temporary file and pass the final name's
    sidecar: ``write_sidecar(tmp, info, sidecar=sidecar_path(final))``.
    """
    manifest = sign_sidecar(Path(media_path), info, config, mime=mime)
    out = Path(sidecar) if sidecar is not None else sidecar_path(media_path)
    parent = out.parent if str(out.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(manifest)
        os.replace(tmp, out)
    except OSError as exc:
        raise ProvenanceError(f"cannot write the C2PA sidecar {out}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return out


# --------------------------------------------------------------------------------------------------
# verification


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


def _own_serials() -> set[str]:
    """Serial numbers (decimal) of the certificates this machine signs with, without making any."""
    x509, _, _ = _x509()
    paths = []
    with contextlib.suppress(ProvenanceError):
        env = SigningConfig.from_env()
        if env is not None:
            paths.append(env.cert_chain)
    paths.append(config_dir() / "local" / "chain.pem")
    serials = set()
    for p in paths:
        with contextlib.suppress(OSError, ValueError):
            serials.add(str(x509.load_pem_x509_certificates(p.read_bytes())[0].serial_number))
    return serials


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
    c2pa = _c2pa()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    mime = mime_for_path(p)
    anchors = _read_anchors(trust_anchors)
    side = Path(sidecar) if sidecar is not None else None

    def read(manifest_data: bytes | None) -> dict[str, Any]:
        with (
            c2pa.Context.from_dict(_settings(anchors)) as ctx,
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
    own = bool(serial) and str(serial) in _own_serials()
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
