"""The certificate and key that C2PA manifests are signed with.

Signing credentials, in order of precedence:

1. a :class:`SigningConfig` passed by the caller (``cert_chain`` PEM + ``private_key`` PEM);
2. ``$MASQUERADE_C2PA_CERT`` and ``$MASQUERADE_C2PA_KEY`` (optionally ``$MASQUERADE_C2PA_ALG``);
3. a local key made on first use in ``$MASQUERADE_CONFIG/c2pa/local`` (else
   ``$XDG_CONFIG_HOME/masquerade/c2pa/local``, else ``~/.config/masquerade/c2pa/local``): a
   self-made CA (``ca.pem``; its private key is discarded) and an ES256 signing certificate issued by
   it (``chain.pem``) with its key (``key.pem``, mode 0600).

:func:`load_credentials` reads a config's PEM files and checks the certificate against the C2PA
certificate profile, so that a certificate c2pa would refuse is reported with the rule it breaks.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .manifest import ProvenanceError

log = logging.getLogger(__name__)

ENV_CONFIG = "MASQUERADE_CONFIG"
ENV_CERT = "MASQUERADE_C2PA_CERT"
ENV_KEY = "MASQUERADE_C2PA_KEY"
ENV_ALG = "MASQUERADE_C2PA_ALG"

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")

_EKU_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"
_LOCAL_DAYS = 20 * 365  # no timestamp authority: validity is judged at verification time, so keep it long


@dataclass(frozen=True)
class SigningConfig:
    """A certificate chain and private key (both PEM files) to sign manifests with.

    ``cert_chain`` holds the signing certificate first, then any intermediates (the root may be
    included). C2PA accepts only end-entity certificates issued by a CA (not self-signed) with the
    digitalSignature key usage and an extended key usage such as emailProtection or documentSigning.
    ``alg`` is one of :data:`ALGORITHMS`; None derives it from the key (EC P-256/384/521 → ES256/384/512,
    RSA → PS256, Ed25519). ``tsa_url`` names an RFC 3161 timestamp authority (needs the network; off
    by default). ``made_here``: masquerade's own local key (:func:`local_signing_config`), which
    :func:`load_credentials` reads without checking it again.
    """

    cert_chain: Path
    private_key: Path
    alg: str | None = None
    tsa_url: str | None = None
    made_here: bool = False

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
class Credentials:
    """What c2pa signs with, read and checked by :func:`load_credentials`: PEM bytes and the algorithm."""

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
            return SigningConfig(chain, key, alg="es256", made_here=True)
        stale = root.with_name(f"{root.name}.expired-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
        log.warning("the local C2PA signing certificate %s has expired; moving it to %s", chain, stale)
        with contextlib.suppress(OSError):
            os.replace(root, stale)
    _make_local_credentials(root)
    return SigningConfig(chain, key, alg="es256", made_here=True)


def _expired(chain: Path) -> bool:
    try:
        pem = chain.read_bytes()
    except OSError:
        return False  # let signing report what is wrong with it
    until = not_valid_after(pem)
    if until is None:  # not the simple PEM this module writes: ask the cryptography package
        x509, _, _ = _x509()
        try:
            until = x509.load_pem_x509_certificate(pem).not_valid_after_utc
        except ValueError:
            return False
    return until <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def not_valid_after(pem: bytes) -> dt.datetime | None:
    """The end of the validity of the first certificate in ``pem``, read from its DER (Certificate →
    TBSCertificate → Validity → notAfter) without importing the cryptography package (a tenth of a
    second of every signing command's start-up); None when it is not that simple structure."""
    try:
        body = pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END CERTIFICATE-----", 1)[0]
        der = base64.b64decode(b"".join(body.split()), validate=True)
        _, cert, _ = _der(der, 0)
        _, tbs, _ = _der(der, cert)
        pos = tbs
        tag, _, end = _der(der, pos)
        if tag == 0xA0:  # [0] version
            pos = end
        for _ in range(3):  # serialNumber, signature, issuer
            _, _, pos = _der(der, pos)
        _, validity, _ = _der(der, pos)
        _, _, after = _der(der, validity)  # past notBefore
        tag, start, end = _der(der, after)
        text = der[start:end].decode("ascii")
        if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ (years 1950-2049)
            year = int(text[:2])
            text = f"{year + (1900 if year >= 50 else 2000)}{text[2:]}"
        elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
            return None
        return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)
    except (IndexError, ValueError):
        return None


def _der(der: bytes, pos: int) -> tuple[int, int, int]:
    """The DER element at ``pos``: (tag, start of its contents, end of it)."""
    tag, n = der[pos], der[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 4:
            raise ValueError("unsupported DER length")
        n = int.from_bytes(der[pos : pos + k], "big")
        pos += k
    if pos + n > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + n


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


def load_credentials(config: SigningConfig) -> Credentials:
    """Read and check a config's PEM files; errors name the file and what is wrong with it.

    masquerade's own local key (``made_here``, with its algorithm) is only read: it was made to the
    C2PA profile and its end date was checked, and the check needs the cryptography package (a tenth
    of a second of every signing command's start-up). Should signing with it fail, the signer checks it
    with ``made_here`` off to say why (:func:`masquerade.provenance.signing`)."""
    try:
        chain_pem = config.cert_chain.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read the C2PA certificate chain {config.cert_chain}: {exc}") from exc
    try:
        key_pem = config.private_key.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read the C2PA private key {config.private_key}: {exc}") from exc
    if config.made_here and config.alg is not None:
        return Credentials(chain_pem, key_pem, config.alg, config.tsa_url)
    x509, _, serialization = _x509()
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

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
    return Credentials(chain_pem, key_pem, alg, config.tsa_url)


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


def own_serials() -> set[str]:
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
