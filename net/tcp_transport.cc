#include "net/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/assert.h"
#include "core/loop.h"
#include "core/when.h"
#include "net/crc32c.h"
#include "net/little_endian.h"

namespace uraft {
namespace {

constexpr std::string_view kHelloMagic = "URHI";
constexpr std::uint8_t kHelloVersion = 1;
constexpr std::size_t kHelloClusterAt = 8;
constexpr std::size_t kHelloNodeAt = 16;
constexpr std::size_t kHelloCrcAt = 20;
static_assert(kHelloCrcAt + 4 == kTcpHelloBytes);
// Pending connections the kernel holds for accept(): a cluster's peers redialing at once.
constexpr int kListenBacklog = 64;
// After a failed accept() (out of descriptors, say), pause before the next, not to spin.
constexpr Duration kAcceptErrorPause = std::chrono::milliseconds(10);
// A writer's buffer that grew past this (a burst of large appends) gives its memory back.
constexpr std::size_t kSendBufferRetainBytes = std::size_t{1} << 20;

// Closes a socket when the task owning it ends, however it ends. Every operation on the
// socket has completed by then: an awaiter resumes only after the kernel's completion.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

void set_nodelay(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // Latency, not a must.
}

Task<IoResult> connect_op(int fd, sockaddr_in addr) {
  co_return co_await io::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
}

template <typename T>
Task<T> value_after(Duration delay, T value) {
  co_await sleep_for(delay);
  co_return value;
}

Task<IoResult> connect_with_timeout(int fd, sockaddr_in addr) {
  std::vector<Task<IoResult>> race;
  race.push_back(connect_op(fd, addr));
  race.push_back(value_after(kTcpConnectTimeout, IoResult{-ETIMEDOUT}));
  AnyResult<IoResult> first = co_await when_any(std::move(race));
  co_return first.value;
}

// Sends all of `bytes`; false if the connection failed first.
Task<bool> send_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const IoResult r = co_await io::send(fd, bytes);
    if (!r.ok() || r.res == 0) co_return false;
    bytes = bytes.subspan(r.bytes());
  }
  co_return true;
}

}  // namespace

std::string tcp_hello(std::uint64_t cluster_id, NodeId node) {
  std::string hello(kTcpHelloBytes, '\0');
  std::memcpy(hello.data(), kHelloMagic.data(), kHelloMagic.size());
  store_le(hello.data() + kHelloMagic.size(), kHelloVersion, 1);
  store_le(hello.data() + kHelloClusterAt, cluster_id, 8);
  store_le(hello.data() + kHelloNodeAt, node.value, 4);
  const std::uint32_t crc = crc32c(byte_span(std::string_view(hello).substr(0, kHelloCrcAt)));
  store_le(hello.data() + kHelloCrcAt, crc, 4);
  return hello;
}

std::unique_ptr<TcpTransport> TcpTransport::open(TransportOptions options,
                                                 std::error_code& error) {
  error.clear();
  if (Loop::current().uring_backend() == nullptr) {
    error = std::error_code(ENOSYS, std::generic_category());
    return nullptr;
  }
  SocketAddress local = SocketAddress::loopback(0);
  if (auto it = options.addresses.find(options.self); it != options.addresses.end()) {
    local = it->second;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::error_code(errno, std::generic_category());
    return nullptr;
  }
  const int one = 1;  // A restarted node rebinds its port despite TIME_WAIT connections.
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = local.to_sockaddr();
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, kListenBacklog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error = std::error_code(errno, std::generic_category());
    ::close(fd);
    return nullptr;
  }
  local = SocketAddress::from_sockaddr(addr);
  std::unique_ptr<TcpTransport> t(new TcpTransport(std::move(options), fd, local));
  t->scope_.spawn(accept_loop(t.get()));
  return t;
}

TcpTransport::TcpTransport(TransportOptions options, int listen_fd, SocketAddress local)
    : options_(std::move(options)),
      listen_fd_(listen_fd),
      local_(local),
      inbox_(options_.receive_queue_max),
      multishot_(options_.multishot_receive) {
  URAFT_ASSERT(options_.send_queue_frames_max > 0);
  URAFT_ASSERT(options_.reconnect_delay_min <= options_.reconnect_delay_max);
  for (const auto& [node, address] : options_.addresses) {
    if (node != options_.self) set_peer(node, address);
  }
}

TcpTransport::~TcpTransport() {
  URAFT_ASSERT(closed_);            // close() was awaited...
  URAFT_ASSERT(scope_.active() == 0);  // ...so no task still points here.
}

void TcpTransport::set_peer(NodeId id, SocketAddress address) {
  URAFT_ASSERT(id != options_.self);
  std::unique_ptr<Peer>& peer = peers_[id];
  if (peer) {
    peer->address = address;  // The dial loop uses it from its next attempt.
    return;
  }
  peer = std::make_unique<Peer>();
  peer->id = id;
  peer->address = address;
  peer->dials = options_.self < id;
  if (peer->dials && !closed_) scope_.spawn(dial_loop(this, peer.get()));
}

TcpTransport::Peer* TcpTransport::find(NodeId id) const {
  const auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second.get();
}

bool TcpTransport::connected(NodeId id) const {
  const Peer* peer = find(id);
  return peer != nullptr && peer->connection != nullptr;
}

std::size_t TcpTransport::queued_frames(NodeId id) const {
  const Peer* peer = find(id);
  return peer != nullptr ? peer->queue_frames : 0;
}

void TcpTransport::log(std::uint64_t count, const std::string& text) const {
  detail::log_counted(options_, count,
                      "tcp node " + std::to_string(options_.self.value) + ": " + text);
}

Duration TcpTransport::backoff(unsigned failures) {
  // min * 2^failures, capped; then "equal jitter": uniform in [d/2, d], so peers that failed
  // together do not redial in lockstep, yet no delay collapses to zero.
  Duration d = options_.reconnect_delay_max;
  if (failures < 32) d = std::min(d, options_.reconnect_delay_min * (std::int64_t{1} << failures));
  const auto ns = static_cast<std::uint64_t>(d.count());
  return Duration(static_cast<Duration::rep>(Loop::current().rng().uniform(ns / 2, ns)));
}

void TcpTransport::drop_queue(Peer& peer) {
  counters_.dropped_unreachable += peer.queue_frames;
  peer.queue.clear();
  peer.queue_frames = 0;
}

bool TcpTransport::send(NodeId id, std::uint64_t request_id, const Message& m) {
  if (closed_) {
    ++counters_.dropped_closed;
    return false;
  }
  Peer* peer = find(id);
  if (peer == nullptr) {
    ++counters_.dropped_unknown_peer;
    return false;
  }
  if (peer->queue_frames >= options_.send_queue_frames_max) {
    ++counters_.dropped_queue_full;
    return false;
  }
  const std::size_t before = peer->queue.size();
  if (!encode_frame(options_.cluster_id, request_id, m, peer->queue)) {
    ++counters_.dropped_oversized;
    log(counters_.dropped_oversized, "refused a message above kFramePayloadBytesMax");
    return false;
  }
  if (before > 0 && peer->queue.size() > options_.send_queue_bytes_max) {
    peer->queue.resize(before);
    ++counters_.dropped_queue_full;
    return false;
  }
  URAFT_ASSERT(peer->queue.size() >= before + kFrameHeaderBytes);
  if (peer->queue_frames++ == 0) peer->wake.set();
  return true;
}

Task<std::optional<Envelope>> TcpTransport::receive() { co_return co_await inbox_.receive(); }

// --- handshake ---

Task<bool> TcpTransport::read_at_least(Connection* c, std::size_t n) {
  URAFT_ASSERT(c->in.size() >= c->in_begin + n);
  while (c->in_end - c->in_begin < n) {
    std::span<std::byte> free(c->in.data() + c->in_end, c->in.size() - c->in_end);
    const IoResult r = co_await io::recv(c->fd, free);
    if (!r.ok() || r.res == 0) co_return false;
    c->in_end += r.bytes();
  }
  co_return true;
}

Task<bool> TcpTransport::read_hello(Connection* c) {
  std::vector<Task<bool>> race;
  race.push_back(read_at_least(c, kTcpHelloBytes));
  race.push_back(value_after(kTcpHandshakeTimeout, false));
  AnyResult<bool> first = co_await when_any(std::move(race));
  co_return first.value;
}

TcpTransport::Peer* TcpTransport::check_hello(Connection& c, std::optional<NodeId> expected) {
  URAFT_ASSERT(c.in_end - c.in_begin >= kTcpHelloBytes);
  const std::byte* hello = c.in.data() + c.in_begin;
  std::optional<FrameError> error;
  if (std::memcmp(hello, kHelloMagic.data(), kHelloMagic.size()) != 0) {
    error = FrameError::kBadMagic;
  } else if (load_le(hello + kHelloMagic.size(), 1) != kHelloVersion) {
    error = FrameError::kUnknownVersion;
  } else if (load_le(hello + kHelloCrcAt, 4) !=
             crc32c(std::span<const std::byte>(hello, kHelloCrcAt))) {
    error = FrameError::kBadCrc;
  } else if (load_le(hello + kHelloClusterAt, 8) != options_.cluster_id) {
    error = FrameError::kWrongCluster;
  }
  if (error) {
    counters_.frame_errors.count(*error);
    ++counters_.connections_rejected;
    log(counters_.frame_errors[*error],
        "closed a connection: bad hello (" + std::string(to_string(*error)) + ")");
    return nullptr;
  }
  const NodeId node{static_cast<std::uint32_t>(load_le(hello + kHelloNodeAt, 4))};
  Peer* peer = find(node);
  // A dialer must be a known peer with a lower id; the side we dialed must be who we dialed.
  const bool ok = expected ? node == *expected
                           : peer != nullptr && !peer->dials;
  if (!ok) {
    ++counters_.connections_rejected;
    log(counters_.connections_rejected,
        "closed a connection: hello from node " + std::to_string(node.value) +
            ", which may not connect here");
    return nullptr;
  }
  c.in_begin += kTcpHelloBytes;
  return peer;
}

// --- connections ---

Task<void> TcpTransport::accept_loop(TcpTransport* t) {
  for (;;) {
    const IoResult r = co_await io::accept(t->listen_fd_);
    if (!r.ok()) {
      ++t->counters_.io_errors;
      t->log(t->counters_.io_errors, "accept failed: " + r.message());
      co_await sleep_for(kAcceptErrorPause);
      continue;
    }
    if (t->handshakes_pending_ >= kTcpHandshakesPendingMax) {
      ::close(r.res);
      ++t->counters_.connections_rejected;
      t->log(t->counters_.connections_rejected,
             "closed an accepted connection: too many handshakes pending");
      continue;
    }
    set_nodelay(r.res);
    ++t->handshakes_pending_;
    t->scope_.spawn(serve_accepted(t, r.res));
  }
}

Task<void> TcpTransport::serve_accepted(TcpTransport* t, int fd) {
  FdCloser closer{fd};
  Connection c;
  c.fd = fd;
  c.in.resize(kTcpReadBufferBytes);
  bool ok = false;
  {
    struct Pending {
      TcpTransport* t;
      ~Pending() { --t->handshakes_pending_; }
    } pending{t};
    ok = co_await read_hello(&c);
  }
  if (!ok) co_return;  // Closed, failed or silent before a whole hello: nothing to count.
  Peer* peer = t->check_hello(c, std::nullopt);
  if (peer == nullptr) co_return;
  const std::string hello = tcp_hello(t->options_.cluster_id, t->options_.self);
  const bool sent = co_await send_all(fd, byte_span(hello));
  if (!sent) co_return;
  co_await run_connection(t, &c, peer);
}

Task<void> TcpTransport::dial_loop(TcpTransport* t, Peer* peer) {
  unsigned failures = 0;
  for (;;) {
    bool established = false;
    {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      FdCloser closer{fd};
      IoResult r{fd < 0 ? -errno : 0};
      if (r.ok()) {
        set_nodelay(fd);
        r = co_await connect_with_timeout(fd, peer->address.to_sockaddr());
      }
      Connection c;
      c.fd = fd;
      c.in.resize(kTcpReadBufferBytes);
      bool ok = r.ok();
      if (ok) {
        const std::string hello = tcp_hello(t->options_.cluster_id, t->options_.self);
        ok = co_await send_all(fd, byte_span(hello));
      }
      if (ok) ok = co_await read_hello(&c);
      if (ok) ok = t->check_hello(c, peer->id) != nullptr;
      if (ok) {
        established = true;
        failures = 0;
        co_await run_connection(t, &c, peer);
      } else {
        ++t->counters_.connections_failed;
        t->log(t->counters_.connections_failed,
               "connecting to node " + std::to_string(peer->id.value) + " at " +
                   peer->address.to_string() + " failed" +
                   (r.ok() ? std::string(" in the handshake") : ": " + r.message()));
      }
    }
    if (!established) {
      t->drop_queue(*peer);  // It is down: what waited for it would only be stale later.
      ++failures;
    }
    co_await sleep_for(t->backoff(established ? 0 : failures));
  }
}

Task<void> TcpTransport::run_connection(TcpTransport* t, Connection* c, Peer* peer) {
  const CancelToken token = co_await current_token();
  Scope io(token);  // The reader and the writer; the first to end cancels the other.
  c->io = &io;
  c->peer = peer;
  // The newest connection wins: a peer that restarted dials again before we notice the old
  // connection is dead.
  if (peer->connection != nullptr) peer->connection->io->cancel();
  peer->connection = c;
  ++t->counters_.connections_opened;
  struct Uninstall {  // However join() ends; destroyed before `io`, which it does not touch.
    TcpTransport* t;
    Connection* c;
    ~Uninstall() {
      c->io = nullptr;
      if (c->peer->connection != c) return;  // Replaced: the queue is the new connection's.
      c->peer->connection = nullptr;
      t->drop_queue(*c->peer);  // What waited for this connection goes with it.
    }
  } uninstall{t, c};
  io.spawn(read_loop(t, c));
  io.spawn(write_loop(t, c));
  co_await io.join();
}

// Decodes every whole frame in the connection's buffer and queues it for receive(), waiting
// while the queue is full. False if the connection must close (bad input, or closing).
Task<bool> TcpTransport::deliver_frames(TcpTransport* t, Connection* c) {
  const NodeId from = c->peer->id;
  for (;;) {
    const std::span<const std::byte> bytes(c->in.data() + c->in_begin, c->in_end - c->in_begin);
    DecodedFrame frame = decode_frame(bytes, t->options_.cluster_id);
    if (frame.error == FrameError::kNeedMoreBytes) {
      c->need = frame.frame_bytes;
      co_return true;
    }
    if (frame.error) {
      t->counters_.frame_errors.count(*frame.error);
      ++t->counters_.connections_rejected;
      t->log(t->counters_.frame_errors[*frame.error],
             "closed the connection with node " + std::to_string(from.value) + ": " +
                 std::string(to_string(*frame.error)) + " frame");
      co_return false;
    }
    URAFT_ASSERT(frame.frame_bytes <= bytes.size());
    c->in_begin += frame.frame_bytes;
    ++t->counters_.frames_received;
    t->counters_.bytes_received += frame.frame_bytes;
    Envelope envelope{from, frame.request_id, std::move(frame.message)};
    const bool queued = co_await t->inbox_.send(std::move(envelope));
    if (!queued) co_return false;  // The transport is closing.
  }
}

// Makes room in c->in for `need` bytes from in_begin, and for a decent read after in_end.
void TcpTransport::make_room(Connection* c, std::size_t need) {
  const std::size_t have = c->in_end - c->in_begin;
  if (have == 0) {
    c->in_begin = c->in_end = 0;
    if (c->in.size() > kTcpReadBufferBytes) {
      std::vector<std::byte>(kTcpReadBufferBytes).swap(c->in);  // A large frame is done.
    }
  }
  if (c->in_begin > 0 && (c->in.size() - c->in_begin < need ||
                          c->in.size() - c->in_end < kTcpReadBufferBytes / 4)) {
    std::memmove(c->in.data(), c->in.data() + c->in_begin, have);
    c->in_begin = 0;
    c->in_end = have;
  }
  if (c->in.size() - c->in_begin < need) c->in.resize(c->in_begin + need);
}

Task<void> TcpTransport::read_loop(TcpTransport* t, Connection* c) {
  if (t->multishot_) {
    std::error_code error;
    std::unique_ptr<detail::BufferRing> ring =
        detail::BufferRing::create(kTcpReceiveBuffers, kTcpReceiveBufferBytes, error);
    if (ring != nullptr) {
      const bool supported = co_await read_multishot(t, c, ring.get());
      if (supported) co_return;
      error = std::error_code(EINVAL, std::generic_category());
    }
    t->multishot_ = false;
    t->log(1, "no multishot receive here (" + error.message() +
                  "): receiving with single-shot recv");
  }
  co_await read_single_shot(t, c);
}

// One multishot recv for the connection's life: the kernel fills buffers from `ring` as data
// arrives, with no submission per read. When the reader falls behind and holds every buffer,
// the operation ends (ENOBUFS) and is re-armed once they are back. False if the kernel turned
// the operation down before any data (buffer rings but no multishot recv: Linux 5.19).
Task<bool> TcpTransport::read_multishot(TcpTransport* t, Connection* c,
                                        detail::BufferRing* ring) {
  detail::MultishotReceive rx(c->fd, *ring, nullptr);
  bool received = false;
  bool unsupported = false;
  std::exception_ptr failure;
  try {
    bool open = co_await deliver_frames(t, c);  // Frames that came with the hello.
    if (open) rx.arm();
    while (open) {
      co_await rx.wait();
      bool rearm = false;
      while (std::optional<detail::MultishotReceive::Completion> done = rx.pop()) {
        if (done->buffer) {
          if (done->res > 0) {
            received = true;
            const auto bytes =
                ring->buffer(*done->buffer).first(static_cast<std::size_t>(done->res));
            make_room(c, c->in_end - c->in_begin + bytes.size());
            std::memcpy(c->in.data() + c->in_end, bytes.data(), bytes.size());
            c->in_end += bytes.size();
          }
          ring->give_back(*done->buffer);
        }
        if (done->more) continue;
        if (done->res > 0 || done->res == -ENOBUFS) {
          rearm = true;  // Ended without an error: we held every buffer, or the kernel chose to.
        } else if (done->res == -EINVAL && !received) {
          unsupported = true;
          open = false;
        } else {
          if (done->res < 0) {
            const std::error_code error(-done->res, std::generic_category());
            ++t->counters_.io_errors;
            t->log(t->counters_.io_errors, "connection with node " +
                                               std::to_string(c->peer->id.value) +
                                               " failed: " + error.message());
          }
          open = false;  // End of stream, or an error.
        }
      }
      if (unsupported) break;
      if (!co_await deliver_frames(t, c)) break;
      if (open && rearm) rx.arm();
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await rx.stop();
  if (failure) {
    c->io->cancel();
    std::rethrow_exception(failure);
  }
  if (unsupported) co_return false;
  c->io->cancel();  // The connection ends with its reader.
  co_return true;
}

// The fallback for kernels without buffer rings or multishot recv: one recv at a time into
// the connection's buffer, re-armed after each completion.
Task<void> TcpTransport::read_single_shot(TcpTransport* t, Connection* c) {
  for (;;) {
    if (!co_await deliver_frames(t, c)) break;
    make_room(c, c->need);
    URAFT_ASSERT(c->in_end < c->in.size());  // need > have: there is room to read into.
    const IoResult r = co_await io::recv(
        c->fd, std::span<std::byte>(c->in.data() + c->in_end, c->in.size() - c->in_end));
    if (!r.ok() || r.res == 0) {
      if (!r.ok()) {
        ++t->counters_.io_errors;
        t->log(t->counters_.io_errors, "connection with node " +
                                           std::to_string(c->peer->id.value) +
                                           " failed: " + r.message());
      }
      break;
    }
    c->in_end += r.bytes();
  }
  c->io->cancel();
}

Task<void> TcpTransport::write_loop(TcpTransport* t, Connection* c) {
  Peer* peer = c->peer;
  std::string out;  // Swapped with the peer's queue: two buffers that keep their capacity.
  struct Lost {     // Frames handed to this writer and not (wholly) sent when it ends.
    TcpTransport* t;
    std::size_t frames = 0;
    ~Lost() { t->counters_.dropped_unreachable += frames; }
  } lost{t};
  for (;;) {
    while (peer->queue_frames == 0) {
      if (peer->connection != c) co_return;
      peer->wake.reset();
      co_await peer->wake.wait();
    }
    if (peer->connection != c) co_return;  // Replaced: the queue belongs to the new writer.
    // Everything queued since the last send goes out in one send: frames queued within a
    // loop turn (and during the previous send) coalesce.
    out.swap(peer->queue);
    lost.frames = std::exchange(peer->queue_frames, 0);
    URAFT_ASSERT(peer->queue.empty());
    const bool sent = co_await send_all(c->fd, byte_span(out));
    if (!sent) {
      c->io->cancel();
      co_return;
    }
    t->counters_.frames_sent += std::exchange(lost.frames, 0);
    t->counters_.bytes_sent += out.size();
    out.clear();
    if (out.capacity() > kSendBufferRetainBytes) std::string().swap(out);
  }
}

Task<void> TcpTransport::close() {
  if (closed_) co_return;
  closed_ = true;
  inbox_.close();
  co_await scope_.close();
  for (auto& [id, peer] : peers_) {
    URAFT_ASSERT(peer->connection == nullptr);
    drop_queue(*peer);
  }
  ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace uraft
