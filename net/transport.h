// Transport: how one node's frames reach its peers over a real network. send() is a
// non-blocking enqueue that may drop (Raft retries, so a dropped message is a lost message,
// which the protocol already tolerates); receive() yields decoded envelopes in arrival order.
// Implementations: TcpTransport (net/tcp_transport.h), UdpTransport (net/udp_transport.h).
#pragma once

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/assert.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/task.h"
#include "core/uring_backend.h"
#include "net/frame.h"
#include "net/message.h"
#include "net/types.h"

namespace uraft {

// An IPv4 address and port (the transports speak IPv4 only: clusters run on 127.0.0.1 or a
// private network). Port 0 in a listening address means "any free port".
struct SocketAddress {
  std::uint32_t ip = INADDR_LOOPBACK;  // Host byte order.
  std::uint16_t port = 0;

  static SocketAddress loopback(std::uint16_t port) { return SocketAddress{INADDR_LOOPBACK, port}; }

  // "a.b.c.d:port"; nullopt if it is not exactly that.
  static std::optional<SocketAddress> parse(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string host(text.substr(0, colon));
    in_addr addr{};
    if (inet_pton(AF_INET, host.c_str(), &addr) != 1) return std::nullopt;
    const std::string_view port_text = text.substr(colon + 1);
    std::uint16_t port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port_text.empty()) {
      return std::nullopt;
    }
    return SocketAddress{ntohl(addr.s_addr), port};
  }

  static SocketAddress from_sockaddr(const sockaddr_in& a) {
    return SocketAddress{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)};
  }
  sockaddr_in to_sockaddr() const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(ip);
    a.sin_port = htons(port);
    return a;
  }
  // One integer per address, for lookup tables.
  std::uint64_t key() const noexcept { return (std::uint64_t{ip} << 16) | port; }

  std::string to_string() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 0xff,
                  (ip >> 8) & 0xff, ip & 0xff, static_cast<unsigned>(port));
    return buf;
  }

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};

// Default bounds (TransportOptions can override them, e.g. a test shrinking a queue).
// Frames waiting for one peer's connection: about a second of heartbeats and appends for a
// busy leader; beyond that the peer is not keeping up and Raft will resend fresher state.
inline constexpr std::size_t kSendQueueFramesMax = 1024;
// Bytes waiting for one peer: a few AppendEntries batches. A frame alone in an empty queue is
// always accepted, so a single frame up to kFrameBytesMax still goes out.
inline constexpr std::size_t kSendQueueBytesMax = std::size_t{16} << 20;
// Decoded envelopes waiting for receive(). TCP readers stop reading when it is full (the
// kernel's window pushes back on the sender); UDP drops and counts.
inline constexpr std::size_t kReceiveQueueMax = 4096;
// Reconnect backoff (TCP): doubles from min to max per failed attempt, with jitter.
inline constexpr Duration kReconnectDelayMin = std::chrono::milliseconds(10);
inline constexpr Duration kReconnectDelayMax = std::chrono::seconds(1);

struct TransportOptions {
  NodeId self;
  std::uint64_t cluster_id = 0;  // Frames from another cluster are rejected and counted.
  // Every node's address. Self's entry is where this node listens (absent: 127.0.0.1, any
  // free port); peers can also be added later with set_peer().
  std::map<NodeId, SocketAddress> addresses;
  std::size_t send_queue_frames_max = kSendQueueFramesMax;
  std::size_t send_queue_bytes_max = kSendQueueBytesMax;
  std::size_t receive_queue_max = kReceiveQueueMax;
  Duration reconnect_delay_min = kReconnectDelayMin;
  Duration reconnect_delay_max = kReconnectDelayMax;
  // Receive with one multishot operation per socket and kernel-selected buffers (Linux 6.0+;
  // older kernels fall back on their own). False forces single-shot receives, re-armed
  // after each completion: tests use it to cover the fallback.
  bool multishot_receive = true;
  // Where errors worth an operator's attention go (bad input, failed connections). Null:
  // stderr. Repeated errors are rate-limited (logged when their count is a power of two).
  std::function<void(std::string_view)> log;
};

struct Envelope {
  NodeId from;
  std::uint64_t request_id = 0;  // The frame's request id; 0 for none.
  Message message;
};

// Counters only grow. Written by the transport's own tasks; read at any time on the loop.
struct TransportCounters {
  std::uint64_t frames_sent = 0;      // Handed to the kernel in full.
  std::uint64_t bytes_sent = 0;
  std::uint64_t frames_received = 0;  // Decoded and queued for receive().
  std::uint64_t bytes_received = 0;
  // send() refusals, by reason.
  std::uint64_t dropped_unknown_peer = 0;
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_closed = 0;
  std::uint64_t dropped_oversized = 0;    // Larger than a frame (or, on UDP, a datagram).
  // Accepted by send() but lost later: the connection failed or broke with them queued, or
  // the kernel refused the datagram.
  std::uint64_t dropped_unreachable = 0;
  // Received but dropped: the receive queue was full (UDP), or the sender is unknown.
  std::uint64_t dropped_receive_full = 0;
  std::uint64_t dropped_unknown_sender = 0;
  // TCP connections: established (handshake done), attempts that failed, and connections
  // closed because the other side sent bad input or broke the handshake rules.
  std::uint64_t connections_opened = 0;
  std::uint64_t connections_failed = 0;
  std::uint64_t connections_rejected = 0;
  std::uint64_t io_errors = 0;  // Failed socket operations other than connects (logged).
  FrameErrorCounters frame_errors;  // Bad input, by kind.
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual NodeId self() const noexcept = 0;
  virtual std::uint64_t cluster_id() const noexcept = 0;
  // Where this node listens (with the port the kernel chose, if it was 0).
  virtual SocketAddress local_address() const noexcept = 0;
  // Adds a peer, or changes its address (used from the next connection or datagram on).
  virtual void set_peer(NodeId peer, SocketAddress address) = 0;

  // Queues `m` for `peer` without waiting. False if it was dropped at once: unknown peer,
  // queue full, message too large, or transport closed (each counted). True promises
  // nothing more than an attempt: the network may still lose it.
  [[nodiscard]] virtual bool send(NodeId peer, std::uint64_t request_id, const Message& m) = 0;

  // The next envelope; nullopt once the transport is closed. One receiver at a time.
  virtual Task<std::optional<Envelope>> receive() = 0;

  // Stops every task, closes every socket, and waits until the kernel has let go of every
  // buffer. Idempotent. Must be awaited before the transport is destroyed.
  virtual Task<void> close() = 0;

  virtual const TransportCounters& counters() const noexcept = 0;
};

namespace detail {

// Logs `text` through the options' hook (or stderr) when `count`, the number of times this
// kind of error has happened, is a power of two: a flood of bad input costs log lines
// logarithmic in its size.
inline void log_counted(const TransportOptions& options, std::uint64_t count,
                        std::string_view text) {
  if (count == 0 || (count & (count - 1)) != 0) return;
  if (options.log) {
    options.log(text);
  } else {
    std::fprintf(stderr, "%.*s (occurrence %llu)\n", static_cast<int>(text.size()), text.data(),
                 static_cast<unsigned long long>(count));
  }
}


// --- io_uring receive machinery shared by the socket transports ------------------------------
// (It belongs next to UringBackend in core/; it lives here, used by net/ only, until then.)

// A ring of receive buffers lent to the kernel (IORING_REGISTER_PBUF_RING, Linux 5.19+): each
// completion of a multishot receive carries one; its owner copies out and gives it back, a
// store to shared memory (no system call).
class BufferRing {
 public:
  // `count` (a power of two, at most 32768) buffers of `bytes` each, registered on the current
  // loop's ring under a group id unique on it. Null with `error` set if the loop has no
  // io_uring or the kernel cannot register buffer rings.
  static std::unique_ptr<BufferRing> create(unsigned count, std::size_t bytes,
                                            std::error_code& error) {
    URAFT_ASSERT(count > 0 && count <= 32768 && (count & (count - 1)) == 0);
    error.clear();
    UringBackend* uring = Loop::current().uring_backend();
    if (uring == nullptr) {
      error = std::error_code(ENOSYS, std::generic_category());
      return nullptr;
    }
    std::unique_ptr<BufferRing> r(new BufferRing(uring->ring_fd(), count, bytes));
    if (r->ring_ == nullptr) {
      error = std::error_code(ENOMEM, std::generic_category());
      return nullptr;
    }
    // Group ids are per ring; a ring belongs to one thread, so a per-thread counter keeps
    // them apart. A collision (wrapped around to a live group) says EEXIST: try the next.
    for (unsigned attempt = 0; attempt <= 0xffff; ++attempt) {
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<std::uint64_t>(r->ring_);
      reg.ring_entries = count;
      reg.bgid = next_group_++;
      if (::syscall(__NR_io_uring_register, r->ring_fd_, IORING_REGISTER_PBUF_RING, &reg, 1) == 0) {
        r->group_ = reg.bgid;
        r->registered_ = true;
        break;
      }
      if (errno != EEXIST) break;
    }
    if (!r->registered_) {
      error = std::error_code(errno, std::generic_category());
      return nullptr;
    }
    io_uring_buf_ring_init(r->ring_);
    for (unsigned id = 0; id < count; ++id) {
      io_uring_buf_ring_add(r->ring_, r->buffer(static_cast<std::uint16_t>(id)).data(),
                            static_cast<unsigned>(bytes), static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(count), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(r->ring_, static_cast<int>(count));
    return r;
  }

  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  // Only once no operation uses the group (MultishotReceive::stop() was awaited).
  ~BufferRing() {
    if (registered_) {
      io_uring_buf_reg reg{};
      reg.bgid = group_;
      (void)::syscall(__NR_io_uring_register, ring_fd_, IORING_UNREGISTER_PBUF_RING, &reg, 1);
    }
    if (ring_ != nullptr) ::munmap(ring_, ring_bytes_);
  }

  std::uint16_t group() const noexcept { return group_; }
  unsigned count() const noexcept { return count_; }
  std::span<std::byte> buffer(std::uint16_t id) noexcept {
    URAFT_ASSERT(id < count_);
    return {storage_.get() + std::size_t{id} * bytes_, bytes_};
  }
  // Lends buffer `id` to the kernel again.
  void give_back(std::uint16_t id) noexcept {
    URAFT_ASSERT(id < count_);
    io_uring_buf_ring_add(ring_, buffer(id).data(), static_cast<unsigned>(bytes_), id,
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(ring_, 1);
  }

 private:
  BufferRing(int ring_fd, unsigned count, std::size_t bytes)
      : ring_fd_(ring_fd),
        count_(count),
        bytes_(bytes),
        ring_bytes_(count * sizeof(io_uring_buf)),
        storage_(std::make_unique_for_overwrite<std::byte[]>(count * bytes)) {
    void* mem = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                       -1, 0);  // Page-aligned, as the kernel requires.
    if (mem != MAP_FAILED) ring_ = static_cast<io_uring_buf_ring*>(mem);
  }

  static inline thread_local std::uint16_t next_group_ = 0;

  int ring_fd_;
  unsigned count_;
  std::size_t bytes_;
  std::size_t ring_bytes_;
  std::unique_ptr<std::byte[]> storage_;
  io_uring_buf_ring* ring_ = nullptr;
  std::uint16_t group_ = 0;
  bool registered_ = false;
};

// One multishot receive (recv on a stream, recvmsg on datagrams) taking its buffers from a
// BufferRing. The kernel's completions queue here (at most one per buffer, plus the last)
// until the owning task takes them: the task waits with `co_await wait()`, which a completion
// ends in the same loop turn. The owner must `co_await stop()` before destroying it.
class MultishotReceive : private UringOp {
 public:
  struct Completion {
    int res = 0;                          // Bytes (recvmsg: the whole buffer used), or -errno.
    std::optional<std::uint16_t> buffer;  // The buffer holding them, to give back.
    bool more = false;                    // The operation goes on (IORING_CQE_F_MORE).
  };

  // `msg` non-null makes it a recvmsg whose name length is taken from it (it must outlive
  // the operation); null makes it a recv.
  MultishotReceive(int fd, BufferRing& ring, const msghdr* msg)
      : fd_(fd), ring_(ring), msg_(msg), queue_(ring.count() + 1) {
    on_complete = &MultishotReceive::on_cqe;
    uring_ = Loop::current().uring_backend();
    URAFT_ASSERT(uring_ != nullptr);
  }
  MultishotReceive(const MultishotReceive&) = delete;
  MultishotReceive& operator=(const MultishotReceive&) = delete;
  ~MultishotReceive() { URAFT_ASSERT(!in_flight_); }  // stop() was awaited.

  bool in_flight() const noexcept { return in_flight_; }

  // Starts (or restarts, after a last completion) the operation; submitted with the turn.
  void arm() {
    URAFT_ASSERT(!in_flight_);
    io_uring_sqe* sqe = uring_->prepare(this);
    if (msg_ != nullptr) {
      io_uring_prep_recvmsg_multishot(sqe, fd_, const_cast<msghdr*>(msg_), 0);
    } else {
      io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ring_.group();
    in_flight_ = true;
  }

  std::optional<Completion> pop() noexcept {
    if (queued_ == 0) return std::nullopt;
    const Completion c = queue_[head_];
    head_ = (head_ + 1) % queue_.size();
    --queued_;
    return c;
  }

  class [[nodiscard]] Wait {
   public:
    explicit Wait(MultishotReceive& r) : r_(r) {}
    bool await_ready() const noexcept { return r_.queued_ > 0 || !r_.in_flight_; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      if (!token_of(h).register_callback(r_.cancel_, &MultishotReceive::on_cancel, &r_)) {
        r_.wait_cancelled_ = true;
        return false;
      }
      r_.waiter_ = h;
      return true;
    }
    void await_resume() {
      r_.cancel_.reset();
      r_.waiter_ = nullptr;
      if (std::exchange(r_.wait_cancelled_, false)) throw Cancelled{};
    }

   private:
    MultishotReceive& r_;
  };
  // Completes once a completion is queued or the operation has ended. Cancellable.
  Wait wait() noexcept { return Wait(*this); }

  class [[nodiscard]] Stop {
   public:
    explicit Stop(MultishotReceive& r) : r_(r) {}
    bool await_ready() const noexcept { return !r_.in_flight_; }
    void await_suspend(std::coroutine_handle<> h) noexcept { r_.stop_waiter_ = h; }
    void await_resume() noexcept {
      r_.stop_waiter_ = nullptr;
      while (std::optional<Completion> c = r_.pop()) {
        if (c->buffer) r_.ring_.give_back(*c->buffer);
      }
    }

   private:
    MultishotReceive& r_;
  };
  // Cancels the operation and waits (not cancellable: the kernel's completion must come
  // first) until its last completion; queued buffers go back to the ring.
  Stop stop() {
    if (in_flight_) uring_->cancel(this);
    return Stop(*this);
  }

 private:
  static void on_cqe(UringOp* op, int res, std::uint32_t flags) noexcept {
    auto* self = static_cast<MultishotReceive*>(op);
    Completion c;
    c.res = res;
    c.more = (flags & IORING_CQE_F_MORE) != 0;
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
      c.buffer = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    }
    // Each queued completion but the last holds a distinct buffer: the queue cannot overflow.
    URAFT_ASSERT(self->queued_ < self->queue_.size());
    self->queue_[(self->head_ + self->queued_) % self->queue_.size()] = c;
    ++self->queued_;
    if (!c.more) self->in_flight_ = false;
    Loop& loop = Loop::current();
    if (self->waiter_) loop.schedule(std::exchange(self->waiter_, nullptr));
    if (!c.more && self->stop_waiter_) loop.schedule(std::exchange(self->stop_waiter_, nullptr));
  }
  static void on_cancel(void* ctx) noexcept {
    auto* self = static_cast<MultishotReceive*>(ctx);
    if (!self->waiter_) return;  // Already woken by a completion.
    self->wait_cancelled_ = true;
    Loop::current().schedule(std::exchange(self->waiter_, nullptr));
  }

  int fd_;
  BufferRing& ring_;
  const msghdr* msg_;
  UringBackend* uring_ = nullptr;
  std::vector<Completion> queue_;  // Circular: head_, queued_.
  std::size_t head_ = 0;
  std::size_t queued_ = 0;
  std::coroutine_handle<> waiter_;       // A task in wait().
  std::coroutine_handle<> stop_waiter_;  // A task in stop().
  CancelCallback cancel_;
  bool wait_cancelled_ = false;
  bool in_flight_ = false;
};

}  // namespace detail
}  // namespace uraft
