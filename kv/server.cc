#include "kv/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "core/io.h"
#include "core/loop.h"
#include "net/transport.h"

namespace uraft::kv {
namespace {

constexpr std::string_view kReplyMaxClients = "-ERR max number of clients reached\r\n";
// After accept() fails for want of descriptors, wait this long before trying again.
constexpr Duration kAcceptRetryDelay = std::chrono::milliseconds(100);

std::string address_of(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (rc != 0 || a.sin_family != AF_INET) return "?";
  return SocketAddress::from_sockaddr(a).to_string();
}

// Closes a client's socket and uncounts it, however its task ends.
struct ClientGuard {
  int fd;
  std::size_t* clients;
  ~ClientGuard() {
    ::close(fd);
    --*clients;
  }
};

// Where one reply of a group comes from: the group's local replies, or the job's.
struct Piece {
  bool from_job = false;
  std::size_t begin = 0;  // Local: a range of the local replies; job: the reply's index.
  std::size_t end = 0;
};

}  // namespace

std::unique_ptr<Server> Server::listen(Service& service, ServerOptions options,
                                       std::error_code& error) {
  error.clear();
  std::optional<SocketAddress> address =
      SocketAddress::parse(options.bind + ":" + std::to_string(options.port));
  if (!address) {
    error = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::error_code(errno, std::generic_category());
    return nullptr;
  }
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in sa = address->to_sockaddr();
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd, kListenBacklog) != 0) {
    error = std::error_code(errno, std::generic_category());
    ::close(fd);
    return nullptr;
  }
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  return std::unique_ptr<Server>(
      new Server(service, std::move(options), fd, ntohs(bound.sin_port)));
}

Server::Server(Service& service, ServerOptions options, int fd, std::uint16_t port)
    : service_(service),
      options_(std::move(options)),
      listen_fd_(fd),
      port_(port),
      started_(Loop::current().now()) {}

Server::~Server() {
  URAFT_ASSERT(clients_ == 0);
  ::close(listen_fd_);
}

Task<void> Server::run() {
  Scope clients(co_await current_token());
  std::exception_ptr error;
  try {
    co_await accept_loop(this, &clients);
  } catch (...) {
    error = std::current_exception();
  }
  clients.cancel();
  co_await clients.close();
  if (error) std::rethrow_exception(error);
}

Task<void> Server::accept_loop(Server* self, Scope* clients) {
  for (;;) {
    const IoResult r = co_await io::accept(self->listen_fd_, SOCK_CLOEXEC);
    if (!r.ok()) {
      ++self->counters_.accept_errors;
      spdlog::error("accept on the client port failed: {}", r.message());
      co_await sleep_for(kAcceptRetryDelay);
      continue;
    }
    const int fd = r.res;
    ++self->counters_.connections_received;
    if (self->clients_ >= self->options_.clients_max) {
      ++self->counters_.connections_rejected;
      (void)::send(fd, kReplyMaxClients.data(), kReplyMaxClients.size(),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ClientSession session;
    session.id = self->next_client_id_++;
    session.addr = address_of(fd, true);
    session.laddr = address_of(fd, false);
    ++self->clients_;
    clients->spawn(serve_client(self, fd, std::move(session)));
  }
}

Task<void> Server::serve_client(Server* self, int fd, ClientSession session) {
  const ClientGuard guard{fd, &self->clients_};
  try {
    co_await serve_requests(self, fd, &session);
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    // This client only: the node keeps serving the others.
    spdlog::error("client {} ({}) closed: {}", session.id, session.addr, e.what());
  }
}

Task<void> Server::serve_requests(Server* self, int fd, ClientSession* session) {
  const LocalSettings settings{self->options_.requirepass};
  RespParser parser;
  Request request;
  BatchEncoder encoder;
  std::string local;  // This group's local replies, back to back.
  std::string out;    // This group's replies in request order.
  std::vector<Piece> pieces;
  std::size_t group_max = kGroupCommandsFirst;
  for (;;) {
    // Take every complete request buffered, up to one group.
    local.clear();
    pieces.clear();
    bool closing = false;
    bool writes = false;
    std::size_t taken = 0;
    while (taken < group_max && encoder.bytes() <= kGroupBatchBytesMax) {
      const ParseStatus status = parser.next(request);
      if (status == ParseStatus::kNeedMore) break;
      if (status == ParseStatus::kError) {
        ++self->counters_.protocol_errors;
        const std::size_t begin = local.size();
        append_error(local, "ERR " + parser.error()->message());
        pieces.push_back(Piece{false, begin, local.size()});
        spdlog::debug("client {} ({}): {}; closing it", session->id, session->addr,
                      parser.error()->message());
        closing = true;
        break;
      }
      ++taken;
      ++self->counters_.commands;
      const std::size_t begin = local.size();
      const Routed routed = route_command(request.argv, *session, settings, local);
      if (routed.route == Route::kRead || routed.route == Route::kWrite) {
        const bool added = encoder.add(request.argv);
        URAFT_ASSERT(added);  // kGroupBatchBytesMax leaves room for any request.
        writes = writes || routed.route == Route::kWrite;
        pieces.push_back(Piece{true, encoder.commands() - 1, 0});
        continue;
      }
      if (routed.route == Route::kInfo) self->append_info(request.argv, local);
      if (routed.route == Route::kTransfer) {
        // Waits (up to an election timeout) with this connection's later requests behind it.
        // (The argument is named first: g++ 12 mishandles a temporary made in a co_await.)
        std::string target;
        if (request.argv.size() > 1) target = request.argv[1];
        co_await transfer(self, std::move(target), &local);
      }
      pieces.push_back(Piece{false, begin, local.size()});
      if (routed.route == Route::kRepliedClose) {
        closing = true;
        break;
      }
    }

    if (pieces.empty()) {  // Nothing complete: read more.
      const std::span<char> room = parser.prepare(kReadChunkBytes);
      const IoResult r = co_await io::recv(fd, std::as_writable_bytes(room));
      if (!r.ok() || r.bytes() == 0) co_return;  // Closed, reset, or an error: done.
      parser.commit(r.bytes());
      self->counters_.bytes_in += r.bytes();
      continue;
    }

    std::shared_ptr<Job> job;
    if (!encoder.empty()) {
      job = std::make_shared<Job>();
      job->access = writes ? Access::kWrite : Access::kRead;
      job->commands = encoder.commands();
      job->batch = encoder.take();
      co_await self->service_.execute(job);
      URAFT_ASSERT(job->done);
      URAFT_ASSERT(job->replies.size() == job->commands);
    }

    out.clear();
    if (job && pieces.size() == job->commands) {
      out.swap(job->replies.bytes);  // Only the job's replies: no copy.
    } else {
      for (const Piece& p : pieces) {
        if (p.from_job) {
          out += job->replies.reply(p.begin);
        } else {
          out.append(local, p.begin, p.end - p.begin);
        }
      }
    }
    job.reset();
    if (!co_await send_all(self, fd, out)) co_return;
    if (closing) co_return;

    // Size the next group so its replies come to about kGroupReplyBytesTarget.
    const std::size_t per_reply = std::max<std::size_t>(1, out.size() / pieces.size());
    group_max = std::clamp<std::size_t>(kGroupReplyBytesTarget / per_reply, 1, kGroupCommandsMax);
    if (out.capacity() > kGroupReplyBytesTarget) std::string().swap(out);  // Give it back.
  }
}

Task<bool> Server::send_all(Server* self, int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const IoResult r = co_await io::send(fd, std::as_bytes(std::span(bytes.data(), bytes.size())));
    if (!r.ok() || r.bytes() == 0) co_return false;
    self->counters_.bytes_out += r.bytes();
    bytes.remove_prefix(r.bytes());
  }
  co_return true;
}

Task<void> Server::transfer(Server* self, std::string target, std::string* out) {
  const Node& node = self->service_.node();
  NodeId to = kNoNode;
  if (!target.empty()) {
    std::int64_t id = 0;
    if (!parse_int64(target, id) || id < 0 || static_cast<std::uint64_t>(id) >= node.cluster_size() ||
        NodeId{static_cast<std::uint32_t>(id)} == node.id()) {
      append_error(*out, "ERR RAFT.TRANSFER takes the id of another node of the cluster");
      co_return;
    }
    to = NodeId{static_cast<std::uint32_t>(id)};
  }
  if (!node.state().is_leader) {
    const NodeId leader = node.leader_id();
    std::string error = "ERR this node is not the leader";
    if (leader != kNoNode) {
      error += " (node ";
      error += std::to_string(leader.value);
      error += " is)";
    }
    append_error(*out, error);
    co_return;
  }
  switch (co_await self->service_.transfer_leadership(to)) {
    case TransferResult::kDone:
      *out += "+OK\r\n";
      break;
    case TransferResult::kNotLeader:
      append_error(*out, "ERR this node is not the leader (any more)");
      break;
    case TransferResult::kBadTarget:
      append_error(*out, "ERR no follower answered lately to take the leadership");
      break;
    case TransferResult::kInProgress:
      append_error(*out, "TRYAGAIN another leadership transfer is under way");
      break;
    case TransferResult::kFailed:
      append_error(*out, "TRYAGAIN the leadership transfer did not complete in time");
      break;
  }
}

void Server::append_info(std::span<const std::string_view> argv, std::string& out) const {
  const Node& node = service_.node();
  const NodeStatus status = node.status();
  InfoBuilder info;
  if (info_wants(argv, "server")) {
    info.section("Server");
    info.field("redis_version", "7.0.0");  // What clients check features against.
    info.field("uraft_version", "0.1.0");
    info.field("redis_mode", "standalone");
    info.field("process_id", std::int64_t{::getpid()});
    info.field("tcp_port", std::int64_t{port_});
    info.field("uptime_in_seconds",
               std::int64_t{std::chrono::duration_cast<std::chrono::seconds>(
                                 Loop::current().now() - started_)
                                 .count()});
    info.field("node_id", std::uint64_t{node.id().value});
    info.field("cluster_id", options_.cluster_id);
    info.field("storage", options_.storage);
    info.field("data_dir", options_.data_dir);
  }
  if (info_wants(argv, "clients")) {
    info.section("Clients");
    info.field("connected_clients", std::uint64_t{clients_});
    info.field("maxclients", std::uint64_t{options_.clients_max});
  }
  if (info_wants(argv, "raft")) {
    info.section("Raft");
    info.field("role", to_string(status.role));
    info.field("term", status.term.value);
    info.field("leader_id",
               status.leader_id == kNoNode ? std::int64_t{-1} : std::int64_t{status.leader_id.value});
    info.field("leader_address", service_.client_address(status.leader_id));
    info.field("commit_index", node.commit_index().value);
    info.field("last_applied", service_.applied_index().value);
    info.field("log_first_index", node.log().first_index().value);
    info.field("log_last_index", node.log().last_index().value);
    info.field("log_entries", std::uint64_t{node.log_entries()});
    info.field("log_bytes", std::uint64_t{node.log_bytes()});
    info.field("snapshot_index", node.snapshot_index().value);
    info.field("snapshot_term", node.snapshot_term().value);
    info.field("proposals_inflight", std::uint64_t{service_.proposals_inflight()});
    const std::vector<LogIndex> match = node.match_indexes();
    std::size_t peers = 0;
    for (std::size_t i = 0; i < match.size(); ++i) {
      if (i == node.id().value) continue;
      const std::string key = "peer" + std::to_string(peers++);
      std::string value = "id=" + std::to_string(i);
      const std::string address = service_.client_address(NodeId{static_cast<std::uint32_t>(i)});
      if (!address.empty()) value += ",address=" + address;
      value += ",match_index=" + std::to_string(match[i].value);
      info.field(key, value);
    }
    info.field("connected_peers_known", std::uint64_t{peers});
  }
  if (info_wants(argv, "stats")) {
    const ServiceCounters& s = service_.counters();
    info.section("Stats");
    info.field("total_connections_received", counters_.connections_received);
    info.field("rejected_connections", counters_.connections_rejected);
    info.field("total_commands_processed", counters_.commands);
    info.field("total_net_input_bytes", counters_.bytes_in);
    info.field("total_net_output_bytes", counters_.bytes_out);
    info.field("protocol_errors", counters_.protocol_errors);
    info.field("write_commands", s.write_commands);
    info.field("read_commands", s.read_commands);
    info.field("entries_proposed", s.entries_proposed);
    info.field("entries_applied", s.entries_applied);
    info.field("read_index_rounds", node.read_rounds());
    info.field("lease_reads", node.stats().lease_reads);
    info.field("read_index_failures", s.read_index_failures);
    info.field("forwarded_jobs", s.forwarded);
    info.field("forward_failures", s.forward_failures);
    info.field("jobs_served_for_peers", s.served_for_peers);
    info.field("tryagain_replies", s.tryagain);
    info.field("timeouts", s.timeouts);
    info.field("snapshots_taken", s.snapshots_taken);
    info.field("snapshot_failures", s.snapshot_failures);
    info.field("snapshot_fork_usec", s.snapshot_fork_usec);
    info.field("snapshots_restored", s.snapshots_restored);
    info.field("bad_entries", s.bad_entries);
    if (peers_ != nullptr) {
      const TransportCounters& t = peers_->counters();
      info.field("peer_frames_rejected", t.frame_errors.total());
      info.field("peer_wrong_cluster", t.frame_errors[FrameError::kWrongCluster]);
      info.field("peer_connections_rejected", t.connections_rejected);
      info.field("peer_frames_dropped", t.dropped_queue_full + t.dropped_unreachable);
    }
  }
  if (info_wants(argv, "keyspace")) {
    const StoreStats stats = service_.store().stats();
    info.section("Keyspace");
    if (stats.keys > 0) {
      info.field("db0", "keys=" + std::to_string(stats.keys) + ",expires=0,avg_ttl=0");
    }
  }
  append_bulk(out, info.text());
}

}  // namespace uraft::kv
