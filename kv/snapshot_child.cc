#include "kv/snapshot_child.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

#include "core/io.h"

namespace uraft::kv {
namespace {

bool write_fully(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The child: only the store and the pipe are its business. It leaves by _exit, so nothing of
// the parent's (the loop, files, logs, atexit handlers) runs in it.
[[noreturn]] void run_child(const Store& store, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // Never outlive the node.
  // Of the parent's files only the pipe: not the data directory's lock, the listening sockets
  // or the connections (a socket the parent closes must not stay open here).
  if (fd != 3) fd = ::dup2(fd, 3);
  if (fd != 3 || ::close_range(4, ~0U, 0) != 0) ::_exit(1);
  bool ok = true;
  try {
    store.snapshot([&](std::string_view piece) { ok = ok && write_fully(fd, piece); }, kSnapshotPieceBytes);
  } catch (...) {
    ok = false;
  }
  ::_exit(ok ? 0 : 1);
}

}  // namespace

ChildSnapshot::ChildSnapshot(const Store& store) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  (void)::fcntl(fds[0], F_SETPIPE_SZ, static_cast<int>(kSnapshotPieceBytes));  // Fewer, larger reads.
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    run_child(store, fds[1]);
  }
  fork_time_ = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - started);
  const int error = errno;
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    throw std::system_error(error, std::generic_category(), "fork");
  }
  fd_ = fds[0];
  pid_ = pid;
}

ChildSnapshot::~ChildSnapshot() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)::waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) ::close(fd_);
}

Task<bool> ChildSnapshot::drain(SnapshotSink& sink) {
  std::string buf(kSnapshotPieceBytes, '\0');
  bool eof = false;
  for (;;) {
    // Offset -1: a pipe has no position.
    const IoResult r = co_await io::read_at(fd_, std::as_writable_bytes(std::span(buf)), UINT64_MAX);
    if (!r.ok() && r.error() == EINTR) continue;
    eof = r.ok() && r.bytes() == 0;
    if (!r.ok() || eof) break;
    std::string piece(buf.data(), r.bytes());
    co_await sink.append(std::move(piece));
  }
  if (!eof) ::kill(pid_, SIGKILL);
  // It exits as it closes the pipe, but tearing down a large process takes a while: wait for
  // that off the loop where the kernel can tell us (a pidfd), before reaping.
  struct OwnedFd {
    int fd;
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  };
  const OwnedFd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0))};
  if (pidfd.fd >= 0) (void)co_await io::poll(pidfd.fd, POLLIN);
  int status = 0;
  const pid_t reaped = ::waitpid(pid_, &status, 0);
  pid_ = -1;
  co_return eof && reaped > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace uraft::kv
