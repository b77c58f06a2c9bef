"""The output frame and the archive inside it: verification and hostile content."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox import STDERR_MEMBER, STDOUT_MEMBER, extract_outputs, make_frame
from kgahp.sandbox.outputs import parse_frame


def frame(archive: bytes, encoding: str = "tar", digest: str | None = None) -> str:
    body = base64.encodebytes(archive).decode()
    digest = digest or hashlib.sha256(archive).hexdigest()
    return f"KGAHP-OUTPUT-BEGIN 1 {len(archive)} {digest} {encoding}\n{body}KGAHP-OUTPUT-END\n"


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def file_member(name: str, data: bytes = b"data",
                mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, b""


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["tar", "tgz"]))
def test_any_archive_survives_framing_and_log_noise(archive: bytes, encoding: str) -> None:
    log = "kgahp-wrapper: warning before\r\n" + frame(archive, encoding) + "noise after\n"
    parsed = parse_frame(log, 0)
    assert parsed.archive == archive and parsed.encoding == encoding


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_any_loss_inside_the_frame_is_detected(archive: bytes, data: st.DataObject) -> None:
    text = frame(archive)
    lines = text.splitlines()
    body = lines[1:-1]
    drop = data.draw(st.integers(0, len(body) - 1))
    for damaged in ("\n".join(lines[:1 + drop] + lines[2 + drop:]),   # a body line lost
                    text[: data.draw(st.integers(0, len(text) - len("KGAHP-OUTPUT-END\n") - 1))]):
        with pytest.raises(TransferError):
            parse_frame(damaged, 0)


def test_checksum_mismatch_is_corruption() -> None:
    with pytest.raises(TransferError, match="sha256"):
        parse_frame(frame(b"abc", digest="0" * 64), 0)


def test_kgahp_side_limit_applies_to_the_declared_size() -> None:
    with pytest.raises(TransferError) as err:
        parse_frame(frame(b"x" * 500), 100)
    assert "500 bytes" in str(err.value) and "100 bytes" in str(err.value)
    assert "KGAHP_MAX_OUTPUT_BYTES" in str(err.value)


def test_last_frame_wins_and_markers_are_reported() -> None:
    assert parse_frame(frame(b"old") + frame(b"new"), 0).archive == b"new"
    with pytest.raises(TransferError, match="no tar"):
        parse_frame("KGAHP-OUTPUT-ERROR no tar in the job image\n", 0)
    with pytest.raises(TransferError, match="no output sandbox"):
        parse_frame("just the job's chatter\n", 0)


def make_req(iwd: Path, **kw: object) -> JobRequest:
    base: dict = {"job_directory": "home_bl_x", "cmd": "/bin/true", "iwd": str(iwd)}
    base.update(kw)
    return JobRequest(**base)


@pytest.mark.parametrize("hostile", [
    file_member("../evil.txt"),
    file_member("/tmp/evil-abs.txt"),
    file_member("out/../../evil.txt"),
    special("out/dev", tarfile.CHRTYPE),
    special("out/fifo", tarfile.FIFOTYPE),
    special("out/hard", tarfile.LNKTYPE, "/etc/passwd"),
])
def test_hostile_archive_members_reject_everything(tmp_path: Path,
                                                   hostile: tuple[tarfile.TarInfo, bytes]) -> None:
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    archive = tar_of(file_member(".kgahp/stdout", b"hello\n"), file_member("out/ok.txt"), hostile)
    req = make_req(iwd, stdout="job.out", transfer_output=("out",))
    with pytest.raises(TransferError):
        extract_outputs(frame(archive), req, TransferSettings())
    assert list(iwd.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_the_archive_cannot_choose_destinations(tmp_path: Path) -> None:
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    archive = tar_of(file_member(".kgahp/stdout", b"out\n"), file_member(".kgahp/stderr", b"e"),
                     file_member("wanted.txt", b"w"), file_member("unrequested.txt", b"u"),
                     file_member("sub/wanted.txt", b"deep"),
                     special("link.txt", tarfile.SYMTYPE, "/etc/passwd"))
    req = make_req(iwd, stdout="/dev/null", stderr="logs/job.err",
                   transfer_output=("wanted.txt",))
    written = extract_outputs(frame(archive), req, TransferSettings())
    assert sorted(written) == [str(iwd / "logs" / "job.err"), str(iwd / "wanted.txt")]
    assert (iwd / "wanted.txt").read_bytes() == b"w"
    assert sorted(p.name for p in iwd.rglob("*")) == ["job.err", "logs", "wanted.txt"]


def test_out_may_be_absolute_anywhere_the_ad_says(tmp_path: Path) -> None:
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    elsewhere = tmp_path / "spool" / "_condor_stdout"
    elsewhere.parent.mkdir()
    req = make_req(iwd, stdout=str(elsewhere), transfer_output=())
    extract_outputs(frame(tar_of(file_member(".kgahp/stdout", b"s"))), req, TransferSettings())
    assert elsewhere.read_bytes() == b"s"


def test_existing_file_is_replaced_not_truncated_in_place(tmp_path: Path) -> None:
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    (iwd / "r.txt").write_bytes(b"previous")
    keep = (iwd / "r.txt").stat().st_ino
    req = make_req(iwd, transfer_output=("r.txt",))
    extract_outputs(frame(tar_of(file_member("r.txt", b"new"))), req, TransferSettings())
    assert (iwd / "r.txt").read_bytes() == b"new"
    assert (iwd / "r.txt").stat().st_ino != keep          # a new inode: renamed into place
    assert sorted(p.name for p in iwd.iterdir()) == ["r.txt"]


def test_empty_frame_and_other_modes(tmp_path: Path) -> None:
    req = make_req(tmp_path, transfer_output=())
    assert extract_outputs(frame(b"", "empty"), req, TransferSettings()) == []
    assert extract_outputs("", req, TransferSettings(mode="none")) == []


def test_make_frame_is_what_extract_outputs_reads(tmp_path: Path) -> None:
    log = make_frame({STDOUT_MEMBER: b"hello\n", STDERR_MEMBER: b"", "r.txt": b"\x00\x01"})
    req = make_req(tmp_path, stdout="o", stderr="e", transfer_output=("r.txt",))
    written = extract_outputs(log, req, TransferSettings())
    assert sorted(written) == [str(tmp_path / n) for n in ("e", "o", "r.txt")]
    assert (tmp_path / "o").read_bytes() == b"hello\n"
    assert (tmp_path / "r.txt").read_bytes() == b"\x00\x01"


def test_compression_bomb_is_refused_before_writing(tmp_path: Path) -> None:
    log = make_frame({"zeros.bin": bytes(200_000)})
    req = make_req(tmp_path, transfer_output=("zeros.bin",))
    transfer = TransferSettings(max_output_bytes=2000)
    compressed = int(log.split()[2])
    assert compressed < 2000
    with pytest.raises(TransferError, match="KGAHP_MAX_OUTPUT_BYTES"):
        extract_outputs(log, req, transfer)
    assert list(tmp_path.iterdir()) == []
    assert extract_outputs(log, req, TransferSettings(max_output_bytes=4000))
    assert (tmp_path / "zeros.bin").stat().st_size == 200_000
