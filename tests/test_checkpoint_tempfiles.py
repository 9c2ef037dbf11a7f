"""Temporary files left by a killed save are removed by the next save into the directory; nothing
else is, and never a file a live writer is still writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from launch_env import clean_env
from models import TinyNet

from nn_handler._env.tempfiles import STALE_AFTER_S, _host_tag
from nn_handler.checkpoint import atomic_save

OTHER_HOST = "0badc0de" if _host_tag() != "0badc0de" else "0badc0df"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def touch(name: str, age_s: float = 0.0) -> str:
    Path(name).write_bytes(b"partial")
    if age_s:
        then = time.time() - age_s
        os.utime(name, (then, then))
    return name


def test_the_next_save_removes_only_abandoned_temp_files_of_the_writer():
    here, me = _host_tag(), os.getpid()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            abandoned = [
                touch(f".model.pth.{here}-{dead_pid()}.abcd_123.tmp"),  # its writer is gone
                touch(f".other.pt.{OTHER_HOST}-{me}.zzzzzzzz.tmp", STALE_AFTER_S + 60),  # old
            ]
            kept = [
                touch(f".model.pth.{here}-{me}.abcdefgh.tmp"),  # this process: still writing
                touch(f".model.pth.{here}-{live.pid}.abcdefgh.tmp"),  # a live writer
                touch(f".model.pth.{OTHER_HOST}-{dead_pid()}.abcdefgh.tmp"),  # other host, fresh
                touch(".model.pth.abcdefgh.tmp", STALE_AFTER_S + 60),  # not our exact pattern
                touch(f"model.pth.{here}-{dead_pid()}.abcdefgh.tmp"),  # not hidden
                touch("notes.tmp", STALE_AFTER_S + 60),
            ]
            directory = f".dir.pth.{here}-{dead_pid()}.abcdefgh.tmp"
            os.mkdir(directory)  # a directory of that name holding a user's file: not ours
            with open(os.path.join(directory, "notes.txt"), "w") as handle:
                handle.write("mine")
            kept.append(directory)
            atomic_save({"w": torch.ones(2)}, "model.pth")
            left = set(os.listdir("."))
            assert not left & set(abandoned)
            assert left == set(kept) | {"model.pth"}
        finally:
            live.kill()


def test_the_temp_file_name_carries_host_and_pid(monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_save({"w": torch.ones(1)}, "m.pth")
    (name,) = seen
    prefix = f".m.pth.{_host_tag()}-{os.getpid()}."
    assert name.startswith(prefix) and name.endswith(".tmp") and len(name) == len(prefix) + 12


# Saves once, then starts a second save that stops for good just before its rename.
WRITER = """
import os, time, torch
from nn_handler.checkpoint import atomic_save
atomic_save({"w": torch.ones(3)}, "model.pth")
def stuck(fd):
    print("writing", flush=True)
    time.sleep(600)
os.fsync = stuck
atomic_save({"w": torch.zeros(3)}, "model.pth")
"""


@pytest.mark.slow
def test_a_save_killed_mid_write_leaves_a_temp_file_the_next_save_removes(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout.readline().strip() == b"writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    (leftover,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert leftover.startswith(f".model.pth.{_host_tag()}-{writer.pid}.")
    atomic_save({"m": TinyNet().state_dict()}, str(tmp_path / "next.pth"))
    assert sorted(os.listdir(tmp_path)) == ["model.pth", "next.pth"]
    assert torch.equal(torch.load(tmp_path / "model.pth", weights_only=True)["w"], torch.ones(3))


# A multi-file save killed for good while it writes its staging directory.
MULTI_WRITER = """
import os, time, torch
from nn_handler.checkpoint import write_multi_file
def stuck(fd):
    print("writing", flush=True)
    time.sleep(600)
os.fsync = stuck
write_multi_file({"w": torch.ones(3), "b": torch.zeros(2)}, "ckpt")
"""


def _killed_multi_file_writer(cwd: Path) -> int:
    writer = subprocess.Popen(
        [sys.executable, "-c", MULTI_WRITER], cwd=cwd, env=clean_env(), stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout.readline().strip() == b"writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    return writer.pid


def test_a_killed_multi_file_saves_staging_directory_is_removed_by_the_next_save(tmp_path):
    """Issue 22: each kill -9 of save(single_file=False) leaked a staging directory; the next
    save removes those of dead writers, and never a directory that is not one of ours."""
    from nn_handler.checkpoint import read_multi_file, write_multi_file

    here = _host_tag()
    leaked = [f".ckpt.{here}-{_killed_multi_file_writer(tmp_path)}" for _ in range(2)]
    # The second (killed) save already removed the first one's directory: one is left.
    (name,) = os.listdir(tmp_path)
    assert name.rsplit(".", 2)[0] == leaked[1] and (tmp_path / name).is_dir()
    theirs = tmp_path / f".ckpt.{here}-{dead_pid()}.abcdefgh.tmp"  # the name, but a user's file
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    fresh = tmp_path / f".ckpt.{OTHER_HOST}-{dead_pid()}.abcdefgh.tmp"  # maybe alive elsewhere
    fresh.mkdir()
    write_multi_file({"w": torch.full((3,), 2.0)}, tmp_path / "ckpt")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt", theirs.name, fresh.name])
    assert (theirs / "notes.txt").read_text() == "mine"
    assert torch.equal(read_multi_file(tmp_path / "ckpt")["w"], torch.full((3,), 2.0))
