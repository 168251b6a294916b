"""C2PA content credentials: signing images and videos, verification, tamper detection, keys."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import masquerade
from masquerade.provenance import c2pa, credentials, manifest, signing, verification
from masquerade.provenance.credentials import SigningConfig, local_signing_config
from masquerade.provenance.manifest import (
    DIGITAL_SOURCE_TYPE,
    SWAP_ASSERTION,
    ProvenanceError,
    ProvenanceInfo,
)
from masquerade.provenance.signing import (
    UnsupportedFormat,
    can_embed,
    sidecar_path,
    sign_bytes,
    sign_file,
    write_sidecar,
)
from masquerade.provenance.verification import verify_file


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config folder; the user's real keys and settings are never touched."""
    home = tmp_path / "config"
    monkeypatch.setenv("MASQUERADE_CONFIG", str(home))
    for var in ("MASQUERADE_C2PA_CERT", "MASQUERADE_C2PA_KEY", "MASQUERADE_C2PA_ALG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("MASQUERADE_C2PA_TRUST_ANCHORS", raising=False)
    return home


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    rgb = masquerade.load_image(masquerade.sample_path("astronaut")).rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _encode(bgr: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, bgr)
    assert ok
    return buf.tobytes()


def _info(**kw) -> ProvenanceInfo:
    return ProvenanceInfo(swapper="reenact", content_id="0123456789ab", **kw)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, length) of the JPEG header segments up to and including SOS."""
    out, i = [], 2
    while True:
        assert data[i] == 0xFF
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        out.append((marker, i, length))
        if marker == 0xDA:
            return out
        i += 2 + length


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    out, i = [], 8
    while i < len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        out.append((data[i + 4 : i + 8], i, length))
        i += 12 + length
    return out


def _make_chain(directory: Path, curve: ec.EllipticCurve, *, self_signed: bool = False) -> tuple[Path, Path]:
    """A user's own CA and signing certificate (chain.pem, key.pem, ca.pem) in ``directory``."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(curve), ec.generate_private_key(curve)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Newsroom CA")])
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Newsroom"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org"),
        ]
    )
    unused = ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    usage = dict.fromkeys((*unused, "encipher_only", "decipher_only"), False)

    def builder(subject, issuer, pub):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )

    ca = (
        builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), critical=True
        )
        .sign(ca_key, hashes.SHA384())
    )
    cert = (
        builder(name, name if self_signed else ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(key if self_signed else ca_key, hashes.SHA384())
    )
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    chain, key_path = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(cert.public_bytes(pem) + (b"" if self_signed else ca.public_bytes(pem)))
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return chain, key_path


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_signed_image_verifies_and_round_trips(tmp_path: Path, bgr: np.ndarray, ext: str) -> None:
    data = _encode(bgr, ext)
    mime = "image/jpeg" if ext == ".jpg" else "image/png"
    info = _info(title=f"out{ext}", extra={"org.example.note": {"run": 7}})
    signed = sign_bytes(data, mime, info)
    assert len(signed) > len(data)
    # the pixels are unchanged: the manifest sits in its own JPEG APP11 segments / PNG chunk
    decoded = cv2.imdecode(np.frombuffer(signed, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))

    path = tmp_path / f"out{ext}"
    path.write_bytes(signed)
    rep = verify_file(path)
    assert rep.present and rep.valid and not rep.tampered
    assert not rep.trusted  # a local key is on no trust list ...
    assert rep.own_key  # ... but it is this machine's
    assert rep.state == "Valid"
    assert all(i.startswith("signingCredential.untrusted") for i in rep.issues)
    assert rep.signer and "masquerade local signer" in rep.signer
    assert (rep.swapper, rep.content_id, rep.timestamp) == ("reenact", "0123456789ab", info.timestamp)
    assert rep.swap is not None and rep.swap["tool"] == f"masquerade/{masquerade.__version__}"
    assert "valid" in rep.summary() and "not on a trust list" in rep.summary(), rep.summary()

    m = rep.manifest
    assert m is not None and m["title"] == f"out{ext}"
    assert m["claim_generator_info"][0]["name"] == "masquerade"
    assert m["claim_generator_info"][0]["version"] == masquerade.__version__
    labels = {a["label"]: a["data"] for a in m["assertions"]}
    (action,) = labels["c2pa.actions.v2"]["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert action["softwareAgent"]["name"] == "masquerade"
    assert action["parameters"]["org.masquerade.swapper"] == "reenact"
    assert action["when"] == info.timestamp
    assert labels[SWAP_ASSERTION]["content_id"] == "0123456789ab"
    assert labels["org.example.note"] == {"run": 7}


def test_local_key_is_made_once_private_and_reused(config_home: Path, bgr: np.ndarray) -> None:
    cfg = local_signing_config()
    assert cfg.private_key.parent == config_home / "c2pa" / "local"
    assert cfg.private_key.stat().st_mode & 0o777 == 0o600
    assert (cfg.private_key.parent / "ca.pem").is_file()
    before = cfg.cert_chain.read_bytes()
    assert local_signing_config() == cfg and cfg.cert_chain.read_bytes() == before  # reused, not remade
    # the signing certificate meets the C2PA profile: CA-issued, digitalSignature, an EKU, not a CA
    leaf, ca = x509.load_pem_x509_certificates(before)
    assert leaf.issuer == ca.subject != leaf.subject
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (
        ExtendedKeyUsageOID.EMAIL_PROTECTION
        in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    sign_bytes(_encode(bgr, ".jpg"), "image/jpeg", _info())
    assert cfg.cert_chain.read_bytes() == before


def _self_signed(until: dt.datetime, cn: str = "x") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(until).sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "until",
    [dt.datetime(2031, 2, 3, 4, 5, 6, tzinfo=dt.UTC), dt.datetime(2061, 7, 8, 9, 10, 11, tzinfo=dt.UTC)],
    ids=["utctime", "generalizedtime"],  # before 2050 X.509 writes UTCTime, from 2050 GeneralizedTime
)
def test_certificate_end_is_read_without_the_cryptography_package(until: dt.datetime) -> None:
    pem = _self_signed(until, cn="masquerade local signer " + "y" * 40)
    assert x509.load_pem_x509_certificate(pem).not_valid_after_utc == until
    assert credentials.not_valid_after(pem) == until
    assert credentials.not_valid_after(b"not a certificate") is None
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    assert credentials.not_valid_after(broken) is None


def test_expired_local_key_is_set_aside_and_remade(config_home: Path) -> None:
    cfg = local_signing_config()
    old = _self_signed(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))  # within a day of its end
    cfg.cert_chain.write_bytes(old)
    again = local_signing_config()
    assert again.cert_chain == cfg.cert_chain and again.cert_chain.read_bytes() != old
    (aside,) = (config_home / "c2pa").glob("local.expired-*")
    assert (aside / "chain.pem").read_bytes() == old


def test_a_damaged_local_key_is_explained_when_signing_fails(config_home: Path, bgr: np.ndarray) -> None:
    """masquerade's own key is read without the profile checks; when c2pa then refuses it, the
    checks run and the error names the file and what is wrong."""
    cfg = local_signing_config()
    assert cfg.made_here
    cfg.private_key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ProvenanceError, match=r"key\.pem: not an unencrypted PEM private key"):
        sign_bytes(_encode(bgr, ".jpg"), "image/jpeg", _info())


def test_jpeg_pixel_tampering_is_detected(tmp_path: Path, bgr: np.ndarray) -> None:
    signed = sign_bytes(_encode(bgr, ".jpg"), "image/jpeg", _info())
    segs = _jpeg_segments(signed)
    _, sos_at, sos_len = segs[-1]
    # flip one bit in the entropy-coded scan data (keeping clear of markers and stuffed bytes)
    k = sos_at + 2 + sos_len + 500
    while signed[k] in (0x00, 0xFE, 0xFF) or signed[k - 1] == 0xFF:
        k += 1
    flipped = bytearray(signed)
    flipped[k] ^= 0x01
    path = tmp_path / "flip.jpg"
    path.write_bytes(bytes(flipped))
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid and not rep.trusted
    assert any("dataHash.mismatch" in i for i in rep.issues)
    assert "TAMPERED" in rep.summary() and "untrusted" not in rep.summary()

    # re-encode edited pixels and splice the original manifest back in at the same place
    app11 = [(at, n) for marker, at, n in segs if marker == 0xEB]
    manifest = b"".join(signed[at : at + 2 + n] for at, n in app11)
    edited = cv2.imdecode(np.frombuffer(signed, np.uint8), cv2.IMREAD_COLOR)
    edited[200:260, 200:260] = 255 - edited[200:260, 200:260]
    fresh = _encode(edited, ".jpg")
    first = app11[0][0]
    path = tmp_path / "spliced.jpg"
    path.write_bytes(fresh[:first] + manifest + fresh[first:])
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid
    assert rep.content_id == "0123456789ab"  # the claim is still readable, just not believable


def test_png_pixel_tampering_is_detected(tmp_path: Path, bgr: np.ndarray) -> None:
    signed = bytearray(sign_bytes(_encode(bgr, ".png"), "image/png", _info()))
    _, at, n = next(c for c in _png_chunks(bytes(signed)) if c[0] == b"IDAT")
    signed[at + 8 + n // 2] ^= 0x01
    # a careful forger fixes the chunk CRC too
    signed[at + 8 + n : at + 12 + n] = struct.pack(">I", zlib.crc32(bytes(signed[at + 4 : at + 8 + n])))
    path = tmp_path / "idat.png"
    path.write_bytes(bytes(signed))
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid
    assert any("dataHash.mismatch" in i for i in rep.issues)


def test_manifest_tampering_is_detected(tmp_path: Path, bgr: np.ndarray) -> None:
    signed = sign_bytes(_encode(bgr, ".jpg"), "image/jpeg", _info())
    # rewrite the content id inside the signed custom assertion
    at = signed.index(b"0123456789ab")
    forged = signed[:at] + b"ffffffffffff" + signed[at + 12 :]
    path = tmp_path / "forged.jpg"
    path.write_bytes(forged)
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid
    assert any("hashedURI.mismatch" in i for i in rep.issues)

    # damage the claim signature (the end of the manifest store)
    _, seg_at, n = [s for s in _jpeg_segments(signed) if s[0] == 0xEB][-1]
    broken = bytearray(signed)
    broken[seg_at + 2 + n - 40] ^= 0x55
    path = tmp_path / "badsig.jpg"
    path.write_bytes(bytes(broken))
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid

    # damage the manifest store's structure
    broken = bytearray(signed)
    broken[seg_at + 40] ^= 0xFF
    path = tmp_path / "broken.jpg"
    path.write_bytes(bytes(broken))
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid


def test_unsigned_file_has_no_credentials(tmp_path: Path, bgr: np.ndarray) -> None:
    path = tmp_path / "plain.jpg"
    path.write_bytes(_encode(bgr, ".jpg"))
    rep = verify_file(path)
    assert not rep.present and not rep.valid and not rep.tampered and rep.manifest is None
    assert "no content credentials" in rep.summary()
    # a damaged file without a manifest is not "tampered"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 64)
    rep = verify_file(bad)
    assert not rep.present and not rep.tampered
    with pytest.raises(masquerade.InputError):
        verify_file(tmp_path / "missing.jpg")


def _tiny_video(path: Path, frames: int = 16) -> None:
    import av

    fmt = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 12, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_signed_video_verifies_and_tampering_is_detected(tmp_path: Path, ext: str) -> None:
    src, dst = tmp_path / f"enc{ext}", tmp_path / f"out{ext}"
    _tiny_video(src)
    assert sign_file(src, dst, None, _info()) == dst
    rep = verify_file(dst)
    assert rep.present and rep.valid and not rep.tampered and not rep.trusted
    assert rep.content_id == "0123456789ab" and rep.swapper == "reenact"
    assert not verify_file(src).present  # the source is left as it was

    data = bytearray(dst.read_bytes())
    data[data.index(b"mdat") + 24] ^= 0x01
    bad = tmp_path / f"bad{ext}"
    bad.write_bytes(bytes(data))
    rep = verify_file(bad)
    assert rep.present and rep.tampered and not rep.valid
    assert any("bmffHash.mismatch" in i for i in rep.issues)


def test_sign_file_in_place(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    path = tmp_path / "videos" / ".out.mp4.x1y2.part.mp4"  # what the video writer signs before its rename
    _tiny_video(path)
    path.chmod(0o640)
    sign_file(path, path, "video/mp4", _info())
    assert path.stat().st_mode & 0o777 == 0o640
    assert verify_file(path).valid
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_unsupported_formats_get_a_sidecar(tmp_path: Path, bgr: np.ndarray) -> None:
    bmp = _encode(bgr, ".bmp")
    assert not can_embed("image/bmp") and can_embed("image/jpeg")
    with pytest.raises(UnsupportedFormat):
        sign_bytes(bmp, "image/bmp", _info())
    path = tmp_path / "out.bmp"
    path.write_bytes(bmp)
    assert not verify_file(path).present
    side = write_sidecar(path, _info())
    assert side == sidecar_path(path) == tmp_path / "out.c2pa"
    assert path.read_bytes() == bmp  # the image itself is not touched
    rep = verify_file(path)
    assert rep.present and rep.valid and rep.sidecar == side and "sidecar" in rep.summary()
    assert rep.content_id == "0123456789ab"
    path.write_bytes(bmp[:-3] + b"\x00\x01\x02")
    rep = verify_file(path)
    assert rep.present and rep.tampered and not rep.valid

    mkv = tmp_path / "clip.mkv"
    _tiny_video(mkv)
    with pytest.raises(UnsupportedFormat):
        sign_file(mkv, mkv, None, _info())
    tmp = tmp_path / ".final.mkv.part.mkv"
    tmp.write_bytes(mkv.read_bytes())
    write_sidecar(tmp, _info(), sidecar=sidecar_path(tmp_path / "final.mkv"))
    tmp.rename(tmp_path / "final.mkv")
    assert verify_file(tmp_path / "final.mkv").valid


def test_user_supplied_key_and_trust(
    tmp_path: Path, bgr: np.ndarray, monkeypatch: pytest.MonkeyPatch, config_home: Path
) -> None:
    chain, key = _make_chain(tmp_path / "mine", ec.SECP384R1())
    data = _encode(bgr, ".jpg")
    path = tmp_path / "user.jpg"
    path.write_bytes(sign_bytes(data, "image/jpeg", _info(), SigningConfig(chain, key)))  # ES384 from the key
    rep = verify_file(path)
    assert rep.valid and not rep.trusted and not rep.own_key
    assert rep.signer == "Example Newsroom (Example Org)"
    assert rep.manifest is not None and rep.manifest["signature_info"]["alg"].lower() == "es384"
    # a verifier that trusts the user's CA calls it trusted
    rep = verify_file(path, trust_anchors=chain.parent / "ca.pem")
    assert rep.valid and rep.trusted and not rep.tampered and rep.state == "Trusted"
    assert "trusted" in rep.summary()
    assert not (config_home / "c2pa" / "local").exists()  # no local key was made

    # the same through the environment
    monkeypatch.setenv("MASQUERADE_C2PA_CERT", str(chain))
    monkeypatch.setenv("MASQUERADE_C2PA_KEY", str(key))
    path.write_bytes(sign_bytes(data, "image/jpeg", _info()))
    rep = verify_file(path)
    assert rep.valid and rep.own_key and rep.signer == "Example Newsroom (Example Org)"
    assert not (config_home / "c2pa" / "local").exists()
    monkeypatch.setenv("MASQUERADE_C2PA_TRUST_ANCHORS", str(chain.parent / "ca.pem"))
    assert verify_file(path).trusted
    monkeypatch.delenv("MASQUERADE_C2PA_KEY")
    with pytest.raises(ProvenanceError, match="MASQUERADE_C2PA_KEY"):
        sign_bytes(data, "image/jpeg", _info())


def test_unusable_user_credentials_are_explained(tmp_path: Path, bgr: np.ndarray) -> None:
    data = _encode(bgr, ".jpg")
    chain, key = _make_chain(tmp_path / "selfsigned", ec.SECP256R1(), self_signed=True)
    with pytest.raises(ProvenanceError, match="self-signed"):
        sign_bytes(data, "image/jpeg", _info(), SigningConfig(chain, key))
    other_chain, _ = _make_chain(tmp_path / "other", ec.SECP256R1())
    with pytest.raises(ProvenanceError, match="does not belong"):
        sign_bytes(data, "image/jpeg", _info(), SigningConfig(other_chain, key))
    with pytest.raises(ProvenanceError, match="unknown C2PA signing algorithm"):
        SigningConfig(chain, key, alg="md5")
    with pytest.raises(ProvenanceError, match="cannot read"):
        sign_bytes(data, "image/jpeg", _info(), SigningConfig(tmp_path / "nope.pem", key))


def test_manifest_definition_is_plain_json() -> None:
    info = ProvenanceInfo(swapper="inswapper")
    assert len(info.content_id) == 12 and int(info.content_id, 16) >= 0
    assert info.timestamp.endswith("Z") and info.tool_version == masquerade.__version__
    json.dumps(info.manifest_definition())
    with pytest.raises(ProvenanceError, match="clash"):
        ProvenanceInfo(swapper="x", extra={SWAP_ASSERTION: {}}).manifest_definition()
    assert os.environ["MASQUERADE_CONFIG"]  # the fixture is active


def test_c2pa_module_gathers_the_public_names() -> None:
    """``masquerade.provenance.c2pa`` (the README's import) re-exports the modules that do the work."""
    owners = {m.__name__: m for m in (manifest, credentials, signing, verification)}
    for name in c2pa.__all__:
        value = getattr(c2pa, name)
        assert any(vars(m).get(name) is value for m in owners.values()), name
        if callable(value):
            assert value.__module__ in owners, f"{name} is defined in {value.__module__}"
    used = {"verify_file", "sign_file", "write_sidecar", "SigningConfig", "ProvenanceInfo", "C2paReport"}
    assert used <= set(c2pa.__all__)
