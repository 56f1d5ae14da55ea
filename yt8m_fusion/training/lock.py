"""One writer per train_dir: the hold train.py takes before writing anything.

TensorFlow does not lock a checkpoint folder: two trainers started on one train_dir (a
second terminal, a scheduler that retries, a resumed job while the old one still runs)
would both train and interleave their checkpoints. `hold(train_dir)` makes the second one
stop with one line naming the first:

    with lock.hold("/runs/attend_fusion"):
      ...  # train; a second hold on the folder raises UserError until this one ends

The hold is the file `train_dir/.train.lock` holding JSON: host, pid, the process's start
time, the boot id, when the hold was taken, and a heartbeat time that a background thread
refreshes every HEARTBEAT_SECS. It is removed on every exit that runs Python's `finally`
(normal end, UserError, SIGTERM, Ctrl-C). A holder that died without removing it (SIGKILL,
a crashed machine) leaves a stale hold, which the next trainer recognises and takes over,
saying so in a log line:

- On a local (POSIX) file system the lock file is also `flock`ed while held; the kernel
  drops that lock when the process dies, so a trainer on the same machine is never refused
  by a dead one. The JSON then decides: same host and boot, and a live process with that
  pid *and* that start time (a reused pid has another start time) -> held; a rebooted host
  or a gone process -> stale.
- A holder on another host (a shared file system) or on storage without file locks
  (`gs://` and the other tf.io.gfile schemes, where a pid means nothing) is alive while its
  heartbeat is younger than STALE_AFTER_SECS; older -> stale.

On `gs://` there is no atomic create through tf.io.gfile: the hold is written, then read
back after VERIFY_DELAY_SECS, and only the trainer whose token is in the file proceeds.
That catches two trainers started together unless one of them stalls between its check
and its write for longer than the delay (docs/RELIABILITY.md states the limits).

Readers (eval.py, inference.py, export, the reports) never take the hold. Multi-worker
training: only the chief holds it (the other workers never write into the train_dir).
"""

import contextlib
import datetime
import errno
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid

import tensorflow as tf

from yt8m_fusion.errors import UserError
from yt8m_fusion.io_utils import describe_error
from yt8m_fusion.io_utils import write_text_atomic

try:
  import fcntl
except ImportError:  # not POSIX: the JSON rules alone decide
  fcntl = None

LOCK_FILE = ".train.lock"
# The holder refreshes its heartbeat this often...
HEARTBEAT_SECS = 60
# ...and a hold whose heartbeat is older than this is stale where a pid cannot be checked
# (another host, gs://). Ten missed heartbeats: a busy machine never gets there.
STALE_AFTER_SECS = 600
# gs:// (no atomic create): how long a new hold waits before reading itself back.
VERIFY_DELAY_SECS = 2.0

# The holds this process has, by lock path: a nested hold of the same train_dir (train.py
# holds it around run(), which holds it too) is the same hold.
_HELD = {}
_HELD_GUARD = threading.Lock()


def lock_path(train_dir):
  return os.path.join(train_dir, LOCK_FILE)


@contextlib.contextmanager
def hold(train_dir, enabled=True):
  """Holds `train_dir` for this process while the block runs (see the module docstring).

  Args:
    train_dir: an existing, writable folder (local or any tf.io.gfile scheme).
    enabled: False makes this a no-op (multi-worker: the workers that are not the chief).

  Raises:
    UserError: another live process holds train_dir; the line names it (host, pid, since
      when) and what to do.
  """
  if not enabled:
    yield None
    return
  path = lock_path(train_dir)
  if "://" not in path:
    path = os.path.abspath(path)  # the same folder however it is written
  with _HELD_GUARD:
    existing = _HELD.get(path)
    if existing is not None:
      existing.depth += 1
  if existing is not None:
    try:
      yield existing
    finally:
      existing.depth -= 1
    return
  owner = TrainDirHold(train_dir)
  owner.acquire()
  with _HELD_GUARD:
    _HELD[path] = owner
  try:
    with _sigterm_exits():
      yield owner
  finally:
    with _HELD_GUARD:
      _HELD.pop(path, None)
    owner.release()


@contextlib.contextmanager
def _sigterm_exits():
  """SIGTERM's default action kills the process at once, leaving the hold behind; instead
  end it through `finally` (exit status 143, as the default). Training itself turns SIGTERM
  into a checkpoint and a clean stop (training.SigtermFlag), in place of this handler."""
  try:
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
  except ValueError:  # not the main thread: leave signals alone
    yield
    return
  if previous not in (signal.SIG_DFL, None):  # the program handles SIGTERM itself
    signal.signal(signal.SIGTERM, previous)
    yield
    return
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):  # pylint: disable=unused-argument
  raise SystemExit(128 + signal.SIGTERM)


class TrainDirHold:
  """The lock file of one train_dir, held by this process (use `hold()`)."""

  def __init__(self, train_dir):
    self.train_dir = train_dir
    self.path = lock_path(train_dir)
    self.local = "://" not in train_dir
    self.depth = 1
    self.record = None
    self._fd = None
    self._stop = threading.Event()
    self._thread = None

  # -- taking and giving back ----------------------------------------------------------

  def acquire(self):
    self.record = _own_record()
    try:
      if self.local:
        self._acquire_local()
      else:
        self._acquire_gfile()
    except (OSError, tf.errors.OpError) as error:
      raise UserError(f"--train_dir={self.train_dir} cannot be written: cannot create "
                      f"{self.path} ({describe_error(error)}); expected a writable folder") \
          from None
    self._thread = threading.Thread(target=self._heartbeat_loop, daemon=True,
                                    name="train_dir-heartbeat")
    self._thread.start()

  def release(self):
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=10)
    try:
      if self.local:
        if self._fd is not None:
          with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):
              os.unlink(self.path)  # while still flock-ed: nobody takes a file being removed
          os.close(self._fd)
          self._fd = None
      elif _read_record(self.path, retries=1).get("token") == self.record["token"]:
        tf.io.gfile.remove(self.path)
    except (OSError, tf.errors.OpError) as error:
      logging.warning("Could not remove %s (%s): the next trainer will find it stale",
                      self.path, describe_error(error))

  def _acquire_local(self):
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        locked = _try_flock(fd)
        if locked is False:  # the kernel says a live process holds it
          raise _held_error(self.train_dir, self.path, _read_record(self.path))
        if not _same_file(fd, self.path):  # removed by its holder meanwhile: try again
          os.close(fd)
          continue
        previous = _read_fd(fd)
        if previous:
          self._take_over_or_refuse(previous, have_flock=locked)
        try:
          _write_fd(fd, self.record)
        except OSError:  # e.g. a full disk: leave no empty hold behind
          with contextlib.suppress(OSError):
            os.unlink(self.path)
          raise
        self._fd = fd
        return
      except BaseException:
        if self._fd is None:
          os.close(fd)
        raise

  def _acquire_gfile(self):
    if tf.io.gfile.exists(self.path):
      self._take_over_or_refuse(_read_text(self.path))
    write_text_atomic(self.path, json.dumps(self.record))
    time.sleep(VERIFY_DELAY_SECS)
    found = _read_record(self.path)
    if found.get("token") != self.record["token"]:
      raise _held_error(self.train_dir, self.path, found)

  def _take_over_or_refuse(self, text, have_flock=False):
    """`text` is a hold found in place: refuse when its holder lives, else log and go on.

    With the flock, an unreadable file cannot be a live holder's on this machine; without
    it, one that changed recently may be a holder's being written.
    """
    record = _parse(text)
    reason = stale_reason(record, lock_age_secs=None if have_flock else _age_secs(self.path))
    if reason is None:
      raise _held_error(self.train_dir, self.path, record)
    logging.warning("Taking over %s: the hold of %s is stale (%s)", self.path,
                    describe_holder(record), reason)

  # -- the heartbeat -------------------------------------------------------------------

  def _heartbeat_loop(self):
    while not self._stop.wait(HEARTBEAT_SECS):
      self.record["heartbeat"] = _utc_now()
      try:
        if self.local:
          _write_fd(self._fd, self.record)
        else:
          found = _read_record(self.path)
          if found.get("token") != self.record["token"]:
            logging.error("%s now names %s, not this process: another trainer took the "
                          "train_dir over (its heartbeat was older than %d s?)", self.path,
                          describe_holder(found), STALE_AFTER_SECS)
            return
          write_text_atomic(self.path, json.dumps(self.record))
      except (OSError, tf.errors.OpError, UserError) as error:
        logging.warning("Could not refresh the heartbeat in %s (%s)", self.path,
                        describe_error(error))


# -- when a hold is stale ----------------------------------------------------------------

def stale_reason(record, *, lock_age_secs=None, now=None):
  """Why the hold described by `record` (a dict, {} if unreadable) is stale; None if live.

  `lock_age_secs` (seconds since the lock file last changed) judges an unreadable one.
  """
  now = time.time() if now is None else now
  if not record:
    if lock_age_secs is not None and lock_age_secs < STALE_AFTER_SECS:
      return None
    return "the lock file holds no readable owner and has not changed for a while"
  here = _own_record()
  same_machine = record.get("host") == here["host"]
  if same_machine and record.get("boot_id") != here["boot_id"]:
    return f"host {record.get('host')} restarted since"
  if same_machine and isinstance(record.get("pid"), int):
    pid = record["pid"]
    if pid == os.getpid() and record.get("process_start") == here["process_start"]:
      return "this process took it in a run that has ended"
    started = process_start_time(pid)
    if started is None:
      return f"process {pid} no longer exists"
    if record.get("process_start") is not None and started != record["process_start"]:
      return f"pid {pid} now belongs to another process"
    return None
  beat = _parse_time(record.get("heartbeat"))
  if beat is None or now - beat > STALE_AFTER_SECS:
    return (f"no heartbeat for {_describe_secs(now - beat)}" if beat is not None else
            "it records no heartbeat") + f" (stale after {STALE_AFTER_SECS} s)"
  return None


def process_start_time(pid):
  """The start time of process `pid` in clock ticks since boot (Linux); None if it is gone.

  Elsewhere: 0 for a live pid (start times are then not compared).
  """
  try:
    with open(f"/proc/{pid}/stat", "rb") as handle:
      stat = handle.read().decode("utf-8", "replace")
    # The command name (field 2) may hold spaces: fields after its ')' are positional.
    return int(stat[stat.rindex(")") + 2:].split()[19])
  except FileNotFoundError:
    return None
  except (OSError, ValueError, IndexError):
    pass
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return None
  except PermissionError:
    pass
  return 0


def describe_holder(record):
  if not record:
    return "an unknown process (the lock file is unreadable)"
  return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')} (since "
          f"{record.get('started', '?')}, last heartbeat {record.get('heartbeat', '?')})")


def _held_error(train_dir, path, record):
  pid = record.get("pid") if record else None
  stop = f"stop that process (kill {pid} on {record.get('host')})" if pid else "stop it"
  return UserError(
      f"--train_dir={train_dir} is in use: train.py {describe_holder(record)} is training "
      f"into it; expected one trainer per train_dir: wait for it to finish, {stop}, or use "
      f"another --train_dir; if you are sure it is dead, remove {path} (--start_new_model "
      "does not bypass this)")


# -- the record ----------------------------------------------------------------------------

def _own_record():
  started = _utc_now()
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "process_start": process_start_time(os.getpid()), "boot_id": _boot_id(),
          "started": started, "heartbeat": started, "token": uuid.uuid4().hex}


def _boot_id():
  try:
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
      return handle.read().strip()
  except OSError:
    return None


def _utc_now():
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse_time(text):
  try:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(
        tzinfo=datetime.timezone.utc).timestamp()
  except (TypeError, ValueError):
    return None


def _describe_secs(secs):
  return f"{secs / 60:.0f} min" if secs >= 120 else f"{secs:.0f} s"


def _parse(text):
  try:
    record = json.loads(text)
  except ValueError:
    return {}
  return record if isinstance(record, dict) else {}


def _read_text(path):
  with tf.io.gfile.GFile(path, "r") as handle:
    return handle.read()


def _read_record(path, retries=3):
  """The JSON in the lock file at `path` ({} if absent or unreadable; a heartbeat being
  rewritten in place is retried)."""
  for attempt in range(retries):
    try:
      record = _parse(_read_text(path))
    except (OSError, tf.errors.OpError):
      return {}
    if record or attempt == retries - 1:
      return record
    time.sleep(0.05)
  return {}


def _age_secs(path):
  try:
    return time.time() - tf.io.gfile.stat(path).mtime_nsec / 1e9
  except (OSError, tf.errors.OpError):
    return None


# -- local files ---------------------------------------------------------------------------

def _try_flock(fd):
  """True: locked; False: another process holds it; None: no file locks here."""
  if fcntl is None:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except BlockingIOError:
    return False
  except OSError as error:
    if error.errno in (errno.EAGAIN, errno.EACCES):
      return False
    return None  # ENOLCK, EOPNOTSUPP...: the JSON rules alone decide


def _same_file(fd, path):
  try:
    return os.fstat(fd).st_ino == os.stat(path).st_ino
  except FileNotFoundError:
    return False


def _read_fd(fd):
  os.lseek(fd, 0, os.SEEK_SET)
  chunks = []
  while chunk := os.read(fd, 65536):
    chunks.append(chunk)
  return b"".join(chunks).decode("utf-8", "replace")


def _write_fd(fd, record):
  data = json.dumps(record).encode("utf-8")
  os.pwrite(fd, data, 0)
  os.ftruncate(fd, len(data))
  os.fsync(fd)
