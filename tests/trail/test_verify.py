"""verify_log finds the first place an audit trail was edited, deleted from, reordered or cut
short, by record number, and tells a crash's torn tail apart from tampering (issue 7)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardened_server.trail.chain import (
    GENESIS_PREV,
    ChainedFileSink,
    canonical_bytes,
    record_hash,
    rotated_files,
)
from hardened_server.trail.record import build_decision_record
from hardened_server.trail.verify import ProblemKind, main, verify_log, verify_stream

N_DECISIONS = 10
N_RECORDS = N_DECISIONS + 2  # genesis + decisions + close


def _record(i: int) -> Any:
    return build_decision_record(
        rule_id="HS-ORIGIN-003",
        allowed=i % 3 == 0,
        reason=f"decision {i}",
        route_class="api",
        method="POST",
        path=f"/api/contents/file{i}.ipynb?token=abc",
        client_ip="192.0.2.7",
        scheme="https",
        user="alice",
        request_id=f"req-{i}",
        policy_fingerprint="sha256:" + "ab" * 32,
    )


def _write_log(path: Path, n: int = N_DECISIONS, **sink_kwargs: Any) -> list[str]:
    with ChainedFileSink(path, fsync="never", **sink_kwargs) as sink:
        for i in range(n):
            sink.append(_record(i))
    return [*rotated_files(path), str(path)]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _objs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)]


def _put_objs(path: Path, objs: list[dict[str, Any]]) -> None:
    _put(path, [canonical_bytes(o) for o in objs])


def _rehash(obj: dict[str, Any]) -> dict[str, Any]:
    obj["hash"] = record_hash(obj)
    return obj


def _rechain(objs: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """What an attacker without the signing key can do: renumber and re-link everything from
    ``start`` on so that the plain chain is consistent again."""
    prev = objs[start - 1]["hash"] if start else GENESIS_PREV
    for seq in range(start, len(objs)):
        objs[seq]["seq"] = seq
        objs[seq]["prev"] = prev
        prev = _rehash(objs[seq])["hash"]
    return objs


def _edit(obj: dict[str, Any]) -> None:
    if obj["kind"] == "decision":
        obj["event"]["decision"] = "allow" if obj["event"]["decision"] == "deny" else "deny"
    elif obj["kind"] == "genesis":
        obj["chain_id"] = "f" * 32
    else:
        obj["time"] = "2000-01-01T00:00:00.000Z"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _write_log(path)
    assert len(_lines(path)) == N_RECORDS
    return path


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private = tmp_path / "audit-key.pem"
    public = tmp_path / "audit-key.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


# -- an untouched trail ----------------------------------------------------------------------------


def test_untouched_chain_verifies(log: Path) -> None:
    result = verify_log([str(log)], None)
    assert result.ok, result.problem
    assert result.records_verified == N_RECORDS
    assert result.head_seq == N_RECORDS - 1
    assert result.closed_cleanly
    assert result.torn_tail is None
    assert _objs(log)[0]["prev"] == GENESIS_PREV


def test_each_record_links_to_the_previous_records_canonical_bytes(log: Path) -> None:
    raw = _lines(log)
    for before, after in itertools.pairwise(raw):
        body = {k: v for k, v in json.loads(before).items() if k != "hash"}
        assert json.loads(after)["prev"] == hashlib.sha256(canonical_bytes(body)).hexdigest()


# -- edits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(N_RECORDS))
def test_naive_edit_is_found_at_the_edited_record(log: Path, position: int) -> None:
    objs = _objs(log)
    _edit(objs[position])
    _put_objs(log, objs)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.EDITED
    assert result.problem.record == position
    assert result.problem.line == position + 1


@pytest.mark.parametrize("position", range(N_RECORDS - 1))
def test_edit_with_recomputed_hash_is_found_at_the_edited_record(log: Path, position: int) -> None:
    objs = _objs(log)
    _edit(objs[position])
    _rehash(objs[position])
    _put_objs(log, objs)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.EDITED
    assert result.problem.record == position


def test_rewritten_last_record_needs_an_anchor(log: Path) -> None:
    """The tail is the one place a chain alone cannot protect: an external anchor can."""
    head = verify_log([str(log)], None)
    objs = _objs(log)
    _edit(objs[-1])
    _rehash(objs[-1])
    _put_objs(log, objs)
    assert verify_log([str(log)], None).ok
    anchored = verify_log([str(log)], None, expect_head=(head.head_seq, head.head_hash))
    assert anchored.problem is not None
    assert anchored.problem.kind == ProblemKind.EDITED
    assert anchored.problem.record == N_RECORDS - 1


def test_reformatted_line_is_an_edit(log: Path) -> None:
    lines = _lines(log)
    lines[4] = json.dumps(json.loads(lines[4]), indent=None).encode()  # ", " separators
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.EDITED, 4)


# -- deletions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(N_RECORDS - 1))
def test_deleted_record_is_found_by_number(log: Path, position: int) -> None:
    lines = _lines(log)
    del lines[position]
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.DELETED
    assert result.problem.record == position


def test_deleting_several_records_names_the_first(log: Path) -> None:
    lines = _lines(log)
    del lines[3:6]
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.DELETED, 3)
    assert "3..5" in result.problem.message


def test_deleting_the_close_record_leaves_an_unclosed_trail(log: Path) -> None:
    lines = _lines(log)
    _put(log, lines[:-1])
    result = verify_log([str(log)], None)
    assert result.ok
    assert not result.closed_cleanly


def test_deleted_and_renumbered_records_are_caught_by_signatures(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    private, public = keypair
    path = tmp_path / "signed.jsonl"
    _write_log(path, signing_key_path=private, checkpoint_every=4)
    objs = _objs(path)
    del objs[2]
    _put_objs(path, _rechain(objs, 2))
    assert verify_log([str(path)], None).ok  # without the key the rewrite is consistent
    result = verify_log([str(path)], str(public))
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.SIGNATURE


# -- reordering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(N_RECORDS - 1))
def test_swapped_records_are_reordering_at_the_first(log: Path, position: int) -> None:
    lines = _lines(log)
    lines[position], lines[position + 1] = lines[position + 1], lines[position]
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.REORDERED
    assert result.problem.record == position


@pytest.mark.parametrize(("source", "target"), [(2, 8), (8, 2), (1, 11)])
def test_moved_record_is_reordering(log: Path, source: int, target: int) -> None:
    lines = _lines(log)
    lines.insert(target, lines.pop(source))
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.REORDERED
    assert result.problem.record == min(source, target)


def test_duplicated_record_is_found(log: Path) -> None:
    lines = _lines(log)
    lines.insert(5, lines[4])
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.REORDERED
    assert result.problem.record == 5


# -- truncation and torn tails ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 10, 50])
def test_torn_tail_is_not_tampering(log: Path, cut: int) -> None:
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - cut])  # the last line loses its end (and its newline)
    result = verify_log([str(log)], None)
    assert result.ok, result.problem
    assert result.torn_tail is not None
    assert result.torn_tail.reason == "no trailing newline"
    assert result.torn_tail.line == N_RECORDS
    assert result.records_verified == N_RECORDS - 1
    assert main([str(log)]) == 0


def test_complete_last_line_without_newline_is_still_a_torn_tail(log: Path) -> None:
    log.write_bytes(log.read_bytes()[:-1])
    result = verify_log([str(log)], None)
    assert result.ok
    assert result.torn_tail is not None
    assert result.records_verified == N_RECORDS - 1


def test_unparsable_final_line_is_a_torn_tail(log: Path) -> None:
    with log.open("ab") as fh:
        fh.write(b"\x00\x00\x00\x00\n")  # what a power loss can leave
    result = verify_log([str(log)], None)
    assert result.ok
    assert result.torn_tail is not None
    assert result.torn_tail.reason == "unparsable final line"


def test_garbage_in_the_middle_is_corruption(log: Path) -> None:
    lines = _lines(log)
    lines[6] = lines[6][:40]
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.CORRUPT, 6)


@pytest.mark.parametrize("keep", [3, 7, N_RECORDS - 1])
def test_truncation_at_a_line_boundary_is_found_with_an_anchor(log: Path, keep: int) -> None:
    head = verify_log([str(log)], None)
    _put(log, _lines(log)[:keep])
    result = verify_log([str(log)], None, expect_head=(head.head_seq, head.head_hash))
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.TRUNCATED
    assert result.problem.record == keep


def test_restarted_writer_documents_the_torn_line(log: Path) -> None:
    with log.open("ab") as fh:
        fh.write(b'{"event":{"client_ip":"192.0.2.7","decis')  # crash mid-write
    with ChainedFileSink(log, fsync="never") as sink:
        entry = sink.append(_record(99))
    assert entry.seq == N_RECORDS + 1  # resume took N_RECORDS; the torn line took no number
    result = verify_log([str(log)], None)
    assert result.ok, result.problem
    assert result.torn_tail is None
    resume = _objs_skip_torn(log)[N_RECORDS]
    assert resume["kind"] == "resume"
    assert resume["torn"]["length"] == len(b'{"event":{"client_ip":"192.0.2.7","decis')


def _objs_skip_torn(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in _lines(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_documented_torn_line_cannot_be_swapped_for_other_bytes(log: Path) -> None:
    with log.open("ab") as fh:
        fh.write(b'{"event":{"client_ip":"192')
    ChainedFileSink(log, fsync="never").close()
    lines = _lines(log)
    torn_index = N_RECORDS
    lines[torn_index] = b'{"event":{"client_ip":"666'
    _put(log, lines)
    result = verify_log([str(log)], None)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.CORRUPT, N_RECORDS)


# -- rotation --------------------------------------------------------------------------------------


@pytest.fixture
def rotated(tmp_path: Path) -> list[str]:
    files = _write_log(tmp_path / "audit.jsonl", n=60, max_bytes=4096)
    assert len(files) >= 4
    return files


def test_rotation_keeps_the_chain(rotated: list[str]) -> None:
    result = verify_log(rotated, None)
    assert result.ok, result.problem
    assert result.records_verified == sum(len(_lines(Path(f))) for f in rotated)
    for before, after in itertools.pairwise(rotated):
        first = _objs(Path(after))[0]
        last = _objs(Path(before))[-1]
        assert first["kind"] == "rotation"
        assert first["prev"] == last["hash"]
        assert first["seq"] == last["seq"] + 1
        assert first["previous_file"] == Path(before).name
        assert first["previous_sha256"] == hashlib.sha256(Path(before).read_bytes()).hexdigest()
    for name in rotated:
        assert Path(name).stat().st_mode & 0o777 == 0o600


def test_rotated_file_truncated_at_a_line_boundary(rotated: list[str]) -> None:
    first = Path(rotated[1])
    lines = _lines(first)
    last_kept = json.loads(lines[-3])["seq"]
    _put(first, lines[:-2])
    result = verify_log(rotated, None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.TRUNCATED
    assert result.problem.record == last_kept + 1
    assert result.problem.file == str(first)


def test_rotated_file_truncated_mid_line(rotated: list[str]) -> None:
    first = Path(rotated[0])
    lines = _lines(first)
    expected = json.loads(lines[-1])["seq"]
    first.write_bytes(b"".join(line + b"\n" for line in lines[:-1]) + lines[-1][:30])
    result = verify_log(rotated, None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.TRUNCATED
    assert result.problem.record == expected


def test_missing_rotated_file(rotated: list[str]) -> None:
    missing = Path(rotated[1])
    first_missing = json.loads(_lines(missing)[0])["seq"]
    result = verify_log([rotated[0], *rotated[2:]], None)
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.DELETED
    assert result.problem.record == first_missing


def test_files_in_the_wrong_order(rotated: list[str]) -> None:
    result = verify_log([rotated[1], rotated[0], *rotated[2:]], None)
    assert result.problem is not None


def test_verifying_from_a_later_file_notes_the_missing_start(rotated: list[str]) -> None:
    result = verify_log(rotated[2:], None)
    assert result.ok
    assert any("earlier files not given" in note for note in result.notes)


def test_crash_between_rename_and_recreate_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write_log(path, n=30, max_bytes=4096)
    path.rename(f"{path}.{len(rotated_files(path)) + 1:06d}")  # the active file never reappeared
    with ChainedFileSink(path, fsync="never", max_bytes=4096) as sink:
        sink.append(_record(1))
    result = verify_log([*rotated_files(path), str(path)], None)
    assert result.ok, result.problem


# -- signatures ------------------------------------------------------------------------------------


@pytest.fixture
def signed(tmp_path: Path, keypair: tuple[Path, Path]) -> Path:
    path = tmp_path / "signed.jsonl"
    _write_log(path, n=20, signing_key_path=keypair[0], checkpoint_every=5)
    return path


def test_signed_checkpoints_verify(signed: Path, keypair: tuple[Path, Path]) -> None:
    result = verify_log([str(signed)], str(keypair[1]))
    assert result.ok, result.problem
    kinds = [o["kind"] for o in _objs(signed)]
    assert kinds.count("checkpoint") == result.checkpoints_verified >= 4
    assert kinds[-1] == "checkpoint"  # the close is signed too
    assert result.signed_through == result.head_seq


def test_private_key_file_also_verifies(signed: Path, keypair: tuple[Path, Path]) -> None:
    assert verify_log([str(signed)], str(keypair[0])).ok


def _checkpoint_positions(path: Path) -> list[int]:
    return [i for i, o in enumerate(_objs(path)) if o["kind"] == "checkpoint"]


def test_modified_signature_fails(signed: Path, keypair: tuple[Path, Path]) -> None:
    objs = _objs(signed)
    position = _checkpoint_positions(signed)[1]
    sig = bytearray(base64.b64decode(objs[position]["sig"]))
    sig[0] ^= 1
    objs[position]["sig"] = base64.b64encode(bytes(sig)).decode()
    _put_objs(signed, _rechain(objs, position))
    assert verify_log([str(signed)], None).ok
    result = verify_log([str(signed)], str(keypair[1]))
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.SIGNATURE, position)


def test_rewritten_history_under_an_old_signature_fails(
    signed: Path, keypair: tuple[Path, Path]
) -> None:
    objs = _objs(signed)
    _edit(objs[3])
    _put_objs(signed, _rechain(objs, 3))
    result = verify_log([str(signed)], str(keypair[1]))
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.SIGNATURE
    assert result.problem.record == _checkpoint_positions(signed)[0]


def test_stripped_checkpoints_fail(signed: Path, keypair: tuple[Path, Path]) -> None:
    objs = [o for o in _objs(signed) if o["kind"] != "checkpoint"]
    _put_objs(signed, _rechain(objs))
    result = verify_log([str(signed)], str(keypair[1]))
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.SIGNATURE


def test_other_key_fails(signed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = verify_log([str(signed)], str(other))
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == (ProblemKind.SIGNATURE, 0)


def test_unsigned_log_fails_when_a_key_is_expected(log: Path, keypair: tuple[Path, Path]) -> None:
    result = verify_log([str(log)], str(keypair[1]))
    assert result.problem is not None
    assert result.problem.kind == ProblemKind.SIGNATURE
    assert "not signed" in result.problem.message


# -- the command line ------------------------------------------------------------------------------

Capsys = pytest.CaptureFixture[str]


def test_main_ok(rotated: list[str], capsys: Capsys) -> None:
    assert main(rotated) == 0
    out = capsys.readouterr().out
    assert out.count(": OK records") == len(rotated)


def test_main_tampered_names_the_record(log: Path, capsys: Capsys) -> None:
    lines = _lines(log)
    del lines[7]
    _put(log, lines)
    assert main([str(log)]) == 1
    out = capsys.readouterr().out
    assert f"{log}: TAMPERED at record 7 (line 8): deleted" in out
    assert "FIRST PROBLEM: record 7" in out


def test_main_with_key(signed: Path, keypair: tuple[Path, Path], capsys: Capsys) -> None:
    assert main([str(signed), "--public-key", str(keypair[1])]) == 0
    assert "signature(s) checked" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["/nonexistent/audit.jsonl"],
        ["--bogus"],
        ["LOG", "--expect-head", "12"],
        ["LOG", "--public-key", "/nonexistent.pem"],
    ],
)
def test_main_usage_errors(log: Path, argv: list[str], capsys: Capsys) -> None:
    assert main([str(log) if a == "LOG" else a for a in argv]) == 2


def test_main_key_that_is_not_a_key(log: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main([str(log), "--public-key", str(bad)]) == 2


def test_the_audit_cli_dispatches_verify_log_to_the_verifier(log: Path, capsys: Capsys) -> None:
    """``hardened-server audit verify-log`` runs ``hardened_server.trail.verify.main``."""
    from hardened_server.audit.cli import main as audit_main

    assert audit_main(["verify-log", str(log)]) == 0


# -- a collected stream of many servers (issue #19) ------------------------------------------------


def _server_stream(tmp_path: Path, user: str, n: int, **sink_kwargs: Any) -> list[bytes]:
    """The stdout lines of one server: every chain line, mirrored as the file gets it."""
    shipped: list[bytes] = []
    ident = {"hub_user": user, "server_name": "", "host": "node-1", "port": 8888}
    sink = ChainedFileSink(
        tmp_path / f"{user}.jsonl",
        fsync="never",
        server=ident,
        mirrors=(shipped.append,),
        **sink_kwargs,
    )
    for i in range(n):
        sink.append(_record(i))
    sink.close()
    return shipped


def _interleave(*streams: list[bytes]) -> list[bytes]:
    """Round-robin, each line behind an RFC 5424 syslog header as rsyslog's file has it."""
    out = []
    for group in itertools.zip_longest(*streams):
        for line in group:
            if line is not None:
                out.append(b"2026-12-07T20:00:00.000Z node-1 hardened-server 42 - - " + line)
    return out


@pytest.fixture
def collected(tmp_path: Path) -> tuple[Path, list[bytes]]:
    lines = _interleave(
        _server_stream(tmp_path, "alice", 6),
        _server_stream(tmp_path, "bob", 4),
        [b"[I 2026-12-07 20:00:00 ServerApp] a log line that is not a record"],
    )
    path = tmp_path / "collected.log"
    _put(path, lines)
    return path, lines


def _chains(path: Path) -> dict[str, Any]:
    result = verify_stream([str(path)])
    return {c.server["hub_user"]: c for c in result.chains if c.server}


def test_a_collected_stream_of_two_servers_verifies_chain_by_chain(
    collected: tuple[Path, list[bytes]],
) -> None:
    path = collected[0]
    result = verify_stream([str(path)])
    assert result.ok
    assert result.skipped == 1
    chains = _chains(path)
    assert set(chains) == {"alice", "bob"}
    assert chains["alice"].result.records_verified == 8  # genesis, 6 decisions, close
    assert chains["bob"].result.closed_cleanly
    assert main(["--stream", str(path)]) == 0


def _line_of(lines: list[bytes], user: str, seq: int) -> int:
    for index, line in enumerate(lines):
        if b"{" not in line:
            continue
        obj = json.loads(line[line.index(b"{") :])
        if obj["server"]["hub_user"] == user and obj["seq"] == seq:
            return index
    raise AssertionError((user, seq))


def test_an_edited_line_is_named_with_its_server_and_line(
    collected: tuple[Path, list[bytes]],
) -> None:
    path, lines = collected
    i = _line_of(lines, "bob", 2)
    lines[i] = lines[i].replace(b'"decision":"deny"', b'"decision":"allow"')
    _put(path, lines)
    chains = _chains(path)
    assert chains["alice"].result.ok
    problem = chains["bob"].result.problem
    assert problem is not None
    assert problem.kind == ProblemKind.EDITED
    assert problem.record == 2
    assert (problem.file, problem.line) == (str(path), i + 1)
    assert main(["--stream", str(path)]) == 1


def test_a_dropped_line_is_named(collected: tuple[Path, list[bytes]]) -> None:
    path, lines = collected
    del lines[_line_of(lines, "alice", 3)]
    _put(path, lines)
    problem = _chains(path)["alice"].result.problem
    assert problem is not None
    assert problem.kind == ProblemKind.DELETED
    assert problem.record == 3


def test_reordered_lines_are_named(collected: tuple[Path, list[bytes]]) -> None:
    path, lines = collected
    a, b = _line_of(lines, "alice", 2), _line_of(lines, "alice", 4)
    lines[a], lines[b] = lines[b], lines[a]
    _put(path, lines)
    problem = _chains(path)["alice"].result.problem
    assert problem is not None
    assert problem.kind == ProblemKind.REORDERED
    assert problem.record == 2


def test_a_truncated_stream_reads_not_closed_and_a_cut_line_corrupt(
    collected: tuple[Path, list[bytes]],
) -> None:
    path, lines = collected
    close = _line_of(lines, "bob", 5)
    cut = lines[:close]
    _put(path, cut)
    assert not _chains(path)["bob"].result.closed_cleanly
    assert _chains(path)["bob"].result.ok
    cut[-1] = cut[-1][: len(cut[-1]) // 2]
    _put(path, cut)
    result = verify_stream([str(path)])
    assert not result.ok
    assert result.corrupt
    assert result.corrupt[0].line == len(cut)
