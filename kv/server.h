// Server: uraftd's client port. It accepts connections on io_uring and serves RESP2 on each:
// every complete request in the input buffer is parsed at once (pipelining), local commands
// are answered on the spot, and the rest of the run becomes one Job for the Service, so one
// connection's pipeline and many connections' requests share a log entry or a read index.
// Replies go back in request order. A connection is read again only once its replies are
// sent: a client that stops reading stops being read (TCP's window pushes back on it), so its
// input and output buffers stay bounded. Bad input closes that client only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "core/clock.h"
#include "core/scope.h"
#include "core/task.h"
#include "kv/batch.h"
#include "kv/commands.h"
#include "kv/resp.h"
#include "kv/service.h"
#include "net/transport.h"

namespace uraft::kv {

// Bytes asked of the kernel per receive (the parser's buffer grows past it only to hold one
// larger request, up to kRequestBytesMax).
inline constexpr std::size_t kReadChunkBytes = std::size_t{64} << 10;
// Requests taken from one connection's buffer as one job. A pipeline deeper than this is
// served in several rounds; together with kGroupReplyBytesTarget it bounds what one client's
// replies can hold in memory.
inline constexpr std::size_t kGroupCommandsMax = 1024;
// A connection's first group is this large; later ones are sized so their replies come to
// about kGroupReplyBytesTarget, judging by the last group's replies (GETs of large values
// then go a few at a time; small replies go kGroupCommandsMax at a time).
inline constexpr std::size_t kGroupCommandsFirst = 16;
inline constexpr std::size_t kGroupReplyBytesTarget = std::size_t{1} << 20;
// A group stops taking requests once its encoded commands pass this, so the next request,
// however large (kRequestBytesMax), still fits the job's batch.
inline constexpr std::size_t kGroupBatchBytesMax = std::size_t{1} << 20;
static_assert(kGroupBatchBytesMax + kRequestBytesMax + (64 << 10) <= kBatchBytesMax);
static_assert(kGroupCommandsMax <= kBatchCommandsMax);
inline constexpr int kListenBacklog = 1024;

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (tests).
  std::string requirepass;
  std::size_t clients_max = 10000;
  // For INFO's server section.
  std::uint64_t cluster_id = 0;
  std::string storage;   // "wal" or "mem".
  std::string data_dir;
};

// Counters only grow; read at any time on the loop (INFO).
struct ServerCounters {
  std::uint64_t connections_received = 0;
  std::uint64_t connections_rejected = 0;  // Over clients_max.
  std::uint64_t commands = 0;
  std::uint64_t protocol_errors = 0;       // Connections closed for malformed input.
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t accept_errors = 0;
};

class Server {
 public:
  // Listens on options.bind:options.port. Null with `error` set if that fails.
  static std::unique_ptr<Server> listen(Service& service, ServerOptions options,
                                        std::error_code& error);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();  // Closes the listening socket; run() must have returned.

  // The port listened on (the kernel's choice if options.port was 0).
  std::uint16_t port() const noexcept { return port_; }

  // Accepts and serves clients until cancelled; then closes every client and joins them.
  Task<void> run();

  // The peer transport whose counters INFO reports (optional; it must outlive the server).
  void set_peer_transport(const Transport* transport) noexcept { peers_ = transport; }

  std::size_t clients() const noexcept { return clients_; }
  const ServerCounters& counters() const noexcept { return counters_; }

 private:
  Server(Service& service, ServerOptions options, int fd, std::uint16_t port);

  static Task<void> accept_loop(Server* self, Scope* clients);
  static Task<void> serve_client(Server* self, int fd, ClientSession session);
  static Task<void> serve_requests(Server* self, int fd, ClientSession* session);
  static Task<bool> send_all(Server* self, int fd, std::string_view bytes);
  // INFO's reply for `argv` (the sections it asks for) appended to `out`.
  void append_info(std::span<const std::string_view> argv, std::string& out) const;
  // RAFT.TRANSFER [node]: +OK once leadership moved on, an error if it did not.
  static Task<void> transfer(Server* self, std::string target, std::string* out);

  Service& service_;
  const ServerOptions options_;
  int listen_fd_;
  std::uint16_t port_;
  TimePoint started_;
  std::size_t clients_ = 0;
  std::uint64_t next_client_id_ = 1;
  ServerCounters counters_;
  const Transport* peers_ = nullptr;
};

}  // namespace uraft::kv
