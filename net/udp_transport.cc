#include "net/udp_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/assert.h"
#include "core/io.h"
#include "core/loop.h"

namespace uraft {
namespace {

// A single-shot recvmsg buffer holds the largest datagram there is, so MSG_TRUNC means a
// foreign sender. A multishot one also holds the kernel's header and the source address.
constexpr std::size_t kUdpReceiveBufferBytes = 65536;
static_assert(kUdpReceiveBufferBytes >= kUdpDatagramBytesMax);
constexpr std::size_t kUdpProvidedBufferBytes =
    sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_in) + kUdpReceiveBufferBytes;
// After a failed recvmsg (rare: memory pressure), wait this long before the next one, so a
// persistent error cannot spin the loop.
constexpr Duration kReceiveErrorPause = std::chrono::milliseconds(1);
// A send slot whose buffer grew past this (encoding a message then refused as too large)
// gives the memory back.
constexpr std::size_t kSlotBufferRetainBytes = 2 * kUdpDatagramBytesMax;

}  // namespace

std::unique_ptr<UdpTransport> UdpTransport::open(TransportOptions options,
                                                 std::error_code& error) {
  error.clear();
  UringBackend* uring = Loop::current().uring_backend();
  if (uring == nullptr) {
    error = std::error_code(ENOSYS, std::generic_category());
    return nullptr;
  }
  SocketAddress local = SocketAddress::loopback(0);
  if (auto it = options.addresses.find(options.self); it != options.addresses.end()) {
    local = it->second;
  }
  // A blocking socket: io_uring never blocks the thread on it (it polls), and sends pass
  // MSG_DONTWAIT so a full socket buffer is an immediate, counted refusal.
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::error_code(errno, std::generic_category());
    return nullptr;
  }
  for (int opt : {SO_RCVBUF, SO_SNDBUF}) {
    const int bytes = kUdpSocketBufferBytes;
    (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);  // Best effort.
  }
  sockaddr_in addr = local.to_sockaddr();
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error = std::error_code(errno, std::generic_category());
    ::close(fd);
    return nullptr;
  }
  local = SocketAddress::from_sockaddr(addr);
  const bool multishot = options.multishot_receive;
  std::unique_ptr<UdpTransport> t(new UdpTransport(std::move(options), fd, local, uring));
  if (multishot) {
    std::error_code ring_error;
    t->ring_ = detail::BufferRing::create(kUdpReceiveBuffers, kUdpProvidedBufferBytes, ring_error);
    if (t->ring_ == nullptr) {
      t->log(1, "no io_uring buffer rings here (" + ring_error.message() +
                    "): receiving with single-shot recvmsg");
    }
  }
  if (t->ring_ != nullptr) {
    t->scope_.spawn(receive_multishot(t.get()));
  } else {
    for (std::size_t i = 0; i < kUdpReceivesOutstanding; ++i) {
      t->scope_.spawn(receive_single_shot(t.get()));
    }
  }
  return t;
}

UdpTransport::UdpTransport(TransportOptions options, int fd, SocketAddress local,
                           UringBackend* uring)
    : options_(std::move(options)),
      fd_(fd),
      local_(local),
      uring_(uring),
      inbox_(options_.receive_queue_max) {
  free_slots_.reserve(kUdpSendSlotsMax);
  sends_idle_.set();
  for (const auto& [node, address] : options_.addresses) {
    if (node != options_.self) set_peer(node, address);
  }
}

UdpTransport::~UdpTransport() {
  URAFT_ASSERT(closed_);  // close() was awaited...
  URAFT_ASSERT(sends_inflight_ == 0);  // ...so the kernel holds no slot.
}

void UdpTransport::set_peer(NodeId peer, SocketAddress address) {
  URAFT_ASSERT(peer != options_.self);
  if (auto it = peers_.find(peer); it != peers_.end()) senders_.erase(it->second.key());
  peers_[peer] = address;
  senders_[address.key()] = peer;
}

void UdpTransport::log(std::uint64_t count, const std::string& text) const {
  detail::log_counted(options_,
                      count, "udp node " + std::to_string(options_.self.value) + ": " + text);
}

UdpTransport::SendSlot* UdpTransport::take_slot() {
  if (!free_slots_.empty()) {
    SendSlot* slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (slots_.size() >= kUdpSendSlotsMax) return nullptr;
  slots_.push_back(std::make_unique<SendSlot>());
  SendSlot* slot = slots_.back().get();
  slot->owner = this;
  slot->on_complete = &UdpTransport::on_sent;
  return slot;
}

bool UdpTransport::send(NodeId peer, std::uint64_t request_id, const Message& m) {
  if (closed_) {
    ++counters_.dropped_closed;
    return false;
  }
  const auto it = peers_.find(peer);
  if (it == peers_.end()) {
    ++counters_.dropped_unknown_peer;
    return false;
  }
  SendSlot* slot = take_slot();
  if (slot == nullptr) {
    ++counters_.dropped_queue_full;
    return false;
  }
  slot->datagram.clear();
  if (!encode_frame(options_.cluster_id, request_id, m, slot->datagram) ||
      slot->datagram.size() > kUdpDatagramBytesMax) {
    ++counters_.dropped_oversized;
    log(counters_.dropped_oversized,
        "refused a message of " + std::to_string(slot->datagram.size()) +
            " bytes: above the UDP datagram limit (kUdpPayloadBytesMax)");
    if (slot->datagram.capacity() > kSlotBufferRetainBytes) std::string().swap(slot->datagram);
    free_slots_.push_back(slot);
    return false;
  }
  URAFT_ASSERT(slot->datagram.size() >= kFrameHeaderBytes);
  slot->to = it->second.to_sockaddr();
  slot->iov = iovec{slot->datagram.data(), slot->datagram.size()};
  slot->msg = msghdr{};
  slot->msg.msg_name = &slot->to;
  slot->msg.msg_namelen = sizeof slot->to;
  slot->msg.msg_iov = &slot->iov;
  slot->msg.msg_iovlen = 1;
  io_uring_sqe* sqe = uring_->prepare(slot);  // Submitted with the rest of this loop turn.
  io_uring_prep_sendmsg(sqe, fd_, &slot->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sends_inflight_++ == 0) sends_idle_.reset();
  return true;
}

void UdpTransport::on_sent(UringOp* op, int res, std::uint32_t) noexcept {
  auto* slot = static_cast<SendSlot*>(op);
  UdpTransport* self = slot->owner;
  if (res >= 0) {
    URAFT_ASSERT(static_cast<std::size_t>(res) == slot->datagram.size());  // Datagrams are whole.
    ++self->counters_.frames_sent;
    self->counters_.bytes_sent += static_cast<std::uint64_t>(res);
  } else {
    ++self->counters_.dropped_unreachable;  // EAGAIN (socket buffer full), ENOBUFS, ...
  }
  URAFT_ASSERT(self->free_slots_.size() < kUdpSendSlotsMax);  // Within the reservation.
  self->free_slots_.push_back(slot);
  if (--self->sends_inflight_ == 0) self->sends_idle_.set();
}

void UdpTransport::accept_datagram(std::span<const std::byte> bytes, const sockaddr_in& from,
                                   int flags) {
  const SocketAddress source = SocketAddress::from_sockaddr(from);
  if ((flags & MSG_TRUNC) != 0) {
    counters_.frame_errors.count(FrameError::kOversized);
    log(counters_.frame_errors[FrameError::kOversized],
        "dropped a datagram larger than any frame from " + source.to_string());
    return;
  }
  DecodedFrame frame = decode_frame(bytes, options_.cluster_id);
  if (!frame.error && frame.frame_bytes != bytes.size()) {
    frame.error = FrameError::kBadPayload;  // Bytes after the frame: not one of ours.
  }
  if (frame.error) {
    // kNeedMoreBytes here means a truncated datagram: counted under its own name.
    counters_.frame_errors.count(*frame.error);
    log(counters_.frame_errors[*frame.error], "dropped a datagram from " + source.to_string() +
                                                  ": " + std::string(to_string(*frame.error)));
    return;
  }
  const auto sender = senders_.find(source.key());
  if (sender == senders_.end()) {
    ++counters_.dropped_unknown_sender;
    log(counters_.dropped_unknown_sender,
        "dropped a frame from " + source.to_string() + ", which is no known peer");
    return;
  }
  Envelope envelope{sender->second, frame.request_id, std::move(frame.message)};
  if (!inbox_.try_send(envelope)) {
    ++counters_.dropped_receive_full;
    return;
  }
  ++counters_.frames_received;
  counters_.bytes_received += bytes.size();
}

// One recvmsg completion's buffer: the kernel's header, the source address, the datagram.
void UdpTransport::accept_recvmsg_out(std::span<std::byte> buffer, const msghdr& layout) {
  msghdr shape = layout;
  io_uring_recvmsg_out* out =
      io_uring_recvmsg_validate(buffer.data(), static_cast<int>(buffer.size()), &shape);
  URAFT_ASSERT(out != nullptr);  // The kernel always writes the header and the name.
  sockaddr_in from{};
  std::memcpy(&from, io_uring_recvmsg_name(out), std::min<std::size_t>(out->namelen, sizeof from));
  const auto* payload = static_cast<const std::byte*>(io_uring_recvmsg_payload(out, &shape));
  const unsigned bytes =
      io_uring_recvmsg_payload_length(out, static_cast<int>(buffer.size()), &shape);
  accept_datagram(std::span<const std::byte>(payload, bytes), from, static_cast<int>(out->flags));
}

// One multishot recvmsg for the socket's life. It ends (and is re-armed) when every buffer is
// taken (ENOBUFS: the receiver fell behind within a turn) or on an error.
Task<void> UdpTransport::receive_multishot(UdpTransport* self) {
  msghdr layout{};  // What each completion's buffer holds besides the datagram: the address.
  layout.msg_namelen = sizeof(sockaddr_in);
  detail::MultishotReceive rx(self->fd_, *self->ring_, &layout);
  bool received = false;
  bool unsupported = false;  // A kernel with buffer rings but no multishot recvmsg (5.19).
  std::exception_ptr failure;
  try {
    rx.arm();
    for (;;) {
      co_await rx.wait();
      int error = 0;
      bool ended = false;
      while (std::optional<detail::MultishotReceive::Completion> done = rx.pop()) {
        if (done->buffer) {
          received = true;
          const auto bytes = static_cast<std::size_t>(done->res);
          self->accept_recvmsg_out(self->ring_->buffer(*done->buffer).first(bytes), layout);
          self->ring_->give_back(*done->buffer);
        } else if (done->res < 0 && done->res != -ENOBUFS) {
          error = -done->res;
        }
        ended |= !done->more;
      }
      if (!ended) continue;
      if (error == EINVAL && !received) {
        unsupported = true;
        break;
      }
      if (error != 0) {
        ++self->counters_.io_errors;
        self->log(self->counters_.io_errors,
                  "recvmsg failed: " + std::error_code(error, std::generic_category()).message());
        co_await sleep_for(kReceiveErrorPause);
      }
      rx.arm();
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await rx.stop();
  if (failure) std::rethrow_exception(failure);
  if (unsupported) {
    self->log(1, "no multishot recvmsg here: receiving with single-shot recvmsg");
    for (std::size_t i = 0; i < kUdpReceivesOutstanding; ++i) {
      self->scope_.spawn(receive_single_shot(self));
    }
  }
}

Task<void> UdpTransport::receive_single_shot(UdpTransport* self) {
  std::vector<std::byte> buffer(kUdpReceiveBufferBytes);
  sockaddr_in from{};
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  for (;;) {
    msg = msghdr{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const IoResult r = co_await io::recvmsg(self->fd_, &msg);
    if (!r.ok()) {
      ++self->counters_.io_errors;
      self->log(self->counters_.io_errors, "recvmsg failed: " + r.message());
      co_await sleep_for(kReceiveErrorPause);
      continue;
    }
    self->accept_datagram(std::span<const std::byte>(buffer.data(), r.bytes()), from,
                          msg.msg_flags);
  }
}

Task<std::optional<Envelope>> UdpTransport::receive() { co_return co_await inbox_.receive(); }

Task<void> UdpTransport::close() {
  if (closed_) co_return;
  closed_ = true;
  inbox_.close();
  co_await scope_.close();
  ring_.reset();  // Its receive has stopped with the scope.
  co_await sends_idle_.wait_uncancellable();
  ::close(fd_);
  fd_ = -1;
}

}  // namespace uraft
