// net_bench: what uraft's RPC over real sockets costs on 127.0.0.1, against the plainest
// program that moves the same bytes: two threads with blocking sockets doing send/recv.
//   latency:    ping-pong of a 64-byte ClientRequest -> ClientReply, one call at a time;
//               p50 and p99 per round; floor: uraft / baseline <= 1.5 (p50).
//   throughput: the same calls with 64 in flight (the baseline keeps 64 requests in flight
//               too); floor: uraft / baseline >= 1.0 (calls per second).
// uraft runs TransportRpc over UdpTransport and TcpTransport, client and server each on its
// own io_uring loop on its own thread. Rounds interleave the cases so drift hits all alike;
// ratios are per round, then the median. See docs/transports.md.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/report.h"
#include "core/event.h"
#include "core/loop.h"
#include "core/post.h"
#include "core/scope.h"
#include "net/frame.h"
#include "net/rpc_endpoint.h"
#include "net/tcp_transport.h"
#include "net/udp_transport.h"

namespace uraft::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

constexpr std::uint64_t kCluster = 0xBE7C4;
constexpr NodeId kClient{0};
constexpr NodeId kServer{1};
// A call that takes this long means something is broken, not slow: the run stops.
constexpr Duration kCallTimeout = std::chrono::seconds(5);
// Blocking baseline sockets give up after this long without data (a lost datagram).
constexpr int kBaselineRecvTimeoutS = 5;
constexpr double kLatencyFloor = 1.5;     // uraft p50 / baseline p50 must stay at or below.
constexpr double kThroughputFloor = 1.0;  // uraft calls/s / baseline calls/s at or above.

enum class Kind { kUdp, kTcp };
const char* name_of(Kind k) { return k == Kind::kUdp ? "udp" : "tcp"; }

struct Params {
  unsigned repeat = 5;
  std::uint64_t calls = 20000;      // Timed ping-pong calls per round and case.
  std::uint64_t warmup = 2000;      // Untimed calls first.
  std::uint64_t pipelined = 200000; // Timed calls per round in the throughput cases.
  unsigned inflight = 64;
  std::size_t payload = 64;
  std::string json_path;
  std::string transports = "udp,tcp";
  bool enforce = false;
};

// The bytes each side of a call puts on the wire, so the baseline moves exactly as many.
struct WireSizes {
  std::size_t request = 0;
  std::size_t reply = 0;
};

WireSizes wire_sizes(std::size_t payload) {
  std::string req, rep;
  const Message request = ClientRequest{std::string(payload, 'r')};
  const Message reply = ClientReply{ClientReply::Status::kOk, kClient, std::string(payload, 'r')};
  if (!encode_frame(kCluster, 123456, request, req) ||
      !encode_frame(kCluster, 123456, reply, rep)) {
    throw std::logic_error("encode_frame failed");
  }
  return {req.size(), rep.size()};
}

// --- results -------------------------------------------------------------------------------

struct Row {
  std::string key;
  std::string label;
  std::vector<double> p50_ns, p99_ns, calls_per_s;  // One per round (latency or throughput).
};

// --- uraft: TransportRpc over a real transport, server on its own thread --------------------

std::unique_ptr<Transport> open_transport(Kind kind, TransportOptions options) {
  std::error_code error;
  std::unique_ptr<Transport> t;
  if (kind == Kind::kUdp) {
    t = UdpTransport::open(std::move(options), error);
  } else {
    t = TcpTransport::open(std::move(options), error);
  }
  if (!t) throw std::runtime_error(std::string("opening a transport: ") + error.message());
  return t;
}

class EchoHandler final : public RpcHandler {
 public:
  Task<Message> handle(NodeId from, Message request) override {
    auto& r = std::get<ClientRequest>(request);
    co_return ClientReply{ClientReply::Status::kOk, from, std::move(r.payload)};
  }
};

struct ServerControl {
  Kind kind = Kind::kUdp;
  SocketAddress client;
  std::promise<SocketAddress> ready;  // The server's address, once it listens.
  Loop* loop = nullptr;               // Set before `ready` is fulfilled.
  Event stop;                         // Set on the server's loop (by a post).
};

Task<void> serve(ServerControl* ctl) {
  TransportOptions options;
  options.self = kServer;
  options.cluster_id = kCluster;
  options.addresses[kClient] = ctl->client;
  std::unique_ptr<Transport> t;
  try {
    t = open_transport(ctl->kind, std::move(options));
  } catch (const std::exception&) {
    ctl->ready.set_exception(std::current_exception());  // The client reports it.
    co_return;
  }
  TransportRpc rpc(*t);
  EchoHandler echo;
  rpc.serve(&echo);
  ctl->ready.set_value(t->local_address());
  co_await ctl->stop.wait();
  co_await rpc.close();
  co_await t->close();
}

void server_thread(ServerControl* ctl) {
  std::unique_ptr<Loop> loop;
  try {
    loop = Loop::uring();
  } catch (const std::exception&) {
    ctl->ready.set_exception(std::current_exception());  // The client reports it.
    return;
  }
  loop->post_queue();  // Opened on this thread before the client posts to it.
  ctl->loop = loop.get();
  loop->run(serve(ctl));
}

struct Pipeline {
  std::uint64_t remaining = 0;
  std::uint64_t failures = 0;
};

Task<void> pipeline_worker(TransportRpc* rpc, Pipeline* p, Message request) {
  while (p->remaining > 0) {
    --p->remaining;
    RpcResult r = co_await rpc->call(kServer, request, kCallTimeout);
    if (!r.ok()) ++p->failures;
  }
}

struct UraftRound {
  std::vector<double> latencies_ns;
  double calls_per_s = 0;
  std::uint64_t failures = 0;
};

Task<void> client(Kind kind, const Params* params, ServerControl* ctl, UraftRound* out,
                  bool pipelined) {
  TransportOptions options;
  options.self = kClient;
  options.cluster_id = kCluster;
  std::unique_ptr<Transport> t = open_transport(kind, std::move(options));
  ctl->client = t->local_address();
  std::thread server(server_thread, ctl);
  SocketAddress server_address;
  std::exception_ptr server_failed;
  try {
    server_address = ctl->ready.get_future().get();  // Blocks this loop: nothing else runs yet.
  } catch (...) {
    server_failed = std::current_exception();
  }
  if (server_failed) {
    server.join();
    co_await t->close();
    std::rethrow_exception(server_failed);
  }
  t->set_peer(kServer, server_address);
  TransportRpc rpc(*t);
  Loop& loop = Loop::current();
  const Message request = ClientRequest{std::string(params->payload, 'r')};

  // The first call waits for the connection (TCP); then the warm-up.
  for (std::uint64_t i = 0; i < params->warmup; ++i) {
    RpcResult r = co_await rpc.call(kServer, request, kCallTimeout);
    if (!r.ok()) ++out->failures;
  }
  if (!pipelined) {
    out->latencies_ns.reserve(params->calls);
    for (std::uint64_t i = 0; i < params->calls; ++i) {
      const TimePoint start = loop.now();
      RpcResult r = co_await rpc.call(kServer, request, kCallTimeout);
      out->latencies_ns.push_back(static_cast<double>((loop.now() - start).count()));
      if (!r.ok()) ++out->failures;
    }
  } else {
    Pipeline p;
    p.remaining = params->pipelined;
    Scope scope;
    const TimePoint start = loop.now();
    for (unsigned w = 0; w < params->inflight; ++w) {
      scope.spawn(pipeline_worker(&rpc, &p, request));
    }
    co_await scope.join();
    const double seconds = std::chrono::duration<double>(loop.now() - start).count();
    out->calls_per_s = static_cast<double>(params->pipelined) / seconds;
    out->failures += p.failures;
  }
  ServerControl* c = ctl;
  post(*ctl->loop, [c] { c->stop.set(); });
  co_await rpc.close();
  co_await t->close();
  server.join();
}

UraftRound run_uraft(Kind kind, const Params& params, bool pipelined) {
  UraftRound out;
  ServerControl ctl;
  ctl.kind = kind;
  auto loop = Loop::uring();
  loop->run(client(kind, &params, &ctl, &out, pipelined));
  if (out.failures > 0) {
    std::fprintf(stderr, "net_bench: %llu uraft %s calls failed\n",
                 static_cast<unsigned long long>(out.failures), name_of(kind));
  }
  return out;
}

// --- baseline: two threads, blocking sockets, plain send/recv ------------------------------

void check(bool ok, const char* what) {
  if (!ok) throw std::system_error(errno, std::generic_category(), what);
}

void set_recv_timeout(int fd) {
  timeval tv{};
  tv.tv_sec = kBaselineRecvTimeoutS;
  check(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
}

// A connected pair of sockets on 127.0.0.1: {client, server}.
std::pair<int, int> socket_pair(Kind kind) {
  sockaddr_in addr = SocketAddress::loopback(0).to_sockaddr();
  socklen_t len = sizeof addr;
  if (kind == Kind::kTcp) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(listener >= 0, "socket");
    check(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "bind");
    check(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
    check(::listen(listener, 1) == 0, "listen");
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
    const int s = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    check(s >= 0, "accept");
    ::close(listener);
    const int one = 1;
    for (int fd : {c, s}) {
      check(::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");
      set_recv_timeout(fd);
    }
    return {c, s};
  }
  int fds[2];
  sockaddr_in addrs[2];
  for (int i = 0; i < 2; ++i) {
    fds[i] = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    check(fds[i] >= 0, "socket");
    addrs[i] = SocketAddress::loopback(0).to_sockaddr();
    len = sizeof addrs[i];
    check(::bind(fds[i], reinterpret_cast<sockaddr*>(&addrs[i]), sizeof addrs[i]) == 0, "bind");
    check(::getsockname(fds[i], reinterpret_cast<sockaddr*>(&addrs[i]), &len) == 0, "getsockname");
  }
  for (int i = 0; i < 2; ++i) {
    check(::connect(fds[i], reinterpret_cast<sockaddr*>(&addrs[1 - i]), sizeof addrs[i]) == 0,
          "connect");
    set_recv_timeout(fds[i]);
  }
  return {fds[0], fds[1]};
}

bool send_bytes(int fd, const std::string& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}
bool recv_bytes(int fd, std::string& buf) {
  return ::recv(fd, buf.data(), buf.size(), MSG_WAITALL) == static_cast<ssize_t>(buf.size());
}

// Answers `count` requests, one reply per request.
void baseline_server(int fd, WireSizes sizes, std::uint64_t count, bool* failed) {
  std::string request(sizes.request, '\0'), reply(sizes.reply, 'p');
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!recv_bytes(fd, request) || !send_bytes(fd, reply)) {
      *failed = true;
      return;
    }
  }
}

struct BaselineRound {
  std::vector<double> latencies_ns;
  double calls_per_s = 0;
  bool failed = false;
};

BaselineRound run_baseline(Kind kind, const Params& params, WireSizes sizes, bool pipelined) {
  BaselineRound out;
  const auto [c, s] = socket_pair(kind);
  const std::uint64_t timed = pipelined ? params.pipelined : params.calls;
  bool server_failed = false;
  std::thread server(baseline_server, s, sizes, params.warmup + timed, &server_failed);
  std::string request(sizes.request, 'q'), reply(sizes.reply, '\0');
  bool ok = true;
  for (std::uint64_t i = 0; i < params.warmup && ok; ++i) {
    ok = send_bytes(c, request) && recv_bytes(c, reply);
  }
  if (!pipelined) {
    out.latencies_ns.reserve(timed);
    for (std::uint64_t i = 0; i < timed && ok; ++i) {
      const auto start = Clock::now();
      ok = send_bytes(c, request) && recv_bytes(c, reply);
      out.latencies_ns.push_back(static_cast<double>(nanoseconds(Clock::now() - start).count()));
    }
  } else {
    const auto start = Clock::now();
    std::uint64_t sent = 0;
    for (; sent < std::min<std::uint64_t>(params.inflight, timed) && ok; ++sent) {
      ok = send_bytes(c, request);
    }
    for (std::uint64_t got = 0; got < timed && ok; ++got) {
      ok = recv_bytes(c, reply);
      if (ok && sent < timed) {
        ok = send_bytes(c, request);
        ++sent;
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    out.calls_per_s = static_cast<double>(timed) / seconds;
  }
  const int client_errno = ok ? 0 : errno;
  if (!ok) ::shutdown(c, SHUT_RDWR);  // Unblocks the server.
  server.join();
  ::close(c);
  ::close(s);
  out.failed = !ok || server_failed;
  if (out.failed) {
    std::fprintf(stderr, "net_bench: the %s baseline failed (%s; client %s, server %s)\n",
                 name_of(kind), std::strerror(client_errno), ok ? "ok" : "failed",
                 server_failed ? "failed" : "ok");
  }
  return out;
}

// --- report --------------------------------------------------------------------------------

struct Ratio {
  std::string key;
  std::string label;
  std::vector<double> per_round;
  double floor = 0;
  bool at_most = true;  // The floor is an upper bound (latency) or a lower one (throughput).
  double value() const { return median(per_round); }
  bool ok() const { return at_most ? value() <= floor : value() >= floor; }
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%.1f", i ? ", " : "", v[i]);
    out += buf;
  }
  return out + "]";
}

bool write_json(const Params& params, WireSizes sizes, const std::vector<Row>& rows,
                const std::vector<Ratio>& ratios) {
  std::ofstream f(params.json_path);
  if (!f) {
    std::fprintf(stderr, "net_bench: cannot write %s\n", params.json_path.c_str());
    return false;
  }
  f << "{\n  \"program\": \"net_bench\",\n  \"repeat\": " << params.repeat
    << ",\n  \"payload_bytes\": " << params.payload << ",\n  \"request_wire_bytes\": "
    << sizes.request << ",\n  \"reply_wire_bytes\": " << sizes.reply
    << ",\n  \"latency_calls\": " << params.calls << ",\n  \"pipelined_calls\": "
    << params.pipelined << ",\n  \"inflight\": " << params.inflight
    << ",\n  \"hardware_threads\": " << std::thread::hardware_concurrency() << ",\n  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    f << "    {\"key\": \"" << json_escape(r.key) << "\", \"label\": \"" << json_escape(r.label)
      << "\"";
    if (!r.p50_ns.empty()) {
      f << ", \"p50_ns\": " << median(r.p50_ns) << ", \"p99_ns\": " << median(r.p99_ns)
        << ", \"p50_ns_rounds\": " << json_array(r.p50_ns)
        << ", \"p99_ns_rounds\": " << json_array(r.p99_ns);
    }
    if (!r.calls_per_s.empty()) {
      f << ", \"calls_per_s\": " << median(r.calls_per_s)
        << ", \"calls_per_s_rounds\": " << json_array(r.calls_per_s);
    }
    f << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  f << "  ],\n  \"ratios\": [\n";
  for (std::size_t i = 0; i < ratios.size(); ++i) {
    const Ratio& q = ratios[i];
    f << "    {\"key\": \"" << q.key << "\", \"value\": " << q.value() << ", \"floor\": "
      << q.floor << ", \"bound\": \"" << (q.at_most ? "max" : "min")
      << "\", \"ok\": " << (q.ok() ? "true" : "false") << "}"
      << (i + 1 < ratios.size() ? "," : "") << "\n";
  }
  f << "  ]\n}\n";
  return static_cast<bool>(f);
}

int main_impl(int argc, char** argv) {
  CLI::App app{"net_bench: RPC over uraft's UDP and TCP transports on 127.0.0.1 against "
               "blocking-socket baselines (ping-pong latency p50/p99, then throughput with "
               "calls in flight)"};
  Params params;
  app.add_option("--repeat", params.repeat, "Rounds; each runs every case once")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--calls", params.calls, "Timed ping-pong calls per round and case")
      ->check(CLI::Range(std::uint64_t{100}, std::uint64_t{100'000'000}));
  app.add_option("--warmup", params.warmup, "Untimed calls before each case");
  app.add_option("--pipelined", params.pipelined, "Timed calls per round in throughput cases")
      ->check(CLI::Range(std::uint64_t{100}, std::uint64_t{1'000'000'000}));
  app.add_option("--inflight", params.inflight, "Calls in flight in throughput cases")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--payload", params.payload, "ClientRequest/ClientReply payload bytes")
      ->check(CLI::Range(std::size_t{0}, std::size_t{60000}));
  app.add_option("--json", params.json_path, "Also write the results as JSON to this file");
  app.add_option("--transports", params.transports, "Which to run: udp, tcp or udp,tcp")
      ->check(CLI::IsMember({"udp", "tcp", "udp,tcp"}));
  app.add_flag("--enforce", params.enforce, "Exit with status 2 if a ratio misses its floor");
  CLI11_PARSE(app, argc, argv);

  const WireSizes sizes = wire_sizes(params.payload);
  std::vector<Row> rows;
  std::vector<Ratio> ratios;
  auto row = [&rows](std::string key, std::string label) -> std::size_t {
    rows.push_back(Row{std::move(key), std::move(label), {}, {}, {}});
    return rows.size() - 1;
  };
  struct Cases {
    std::size_t base_lat, uraft_lat, base_tput, uraft_tput;
    std::size_t r_p50, r_p99, r_tput;
  };
  std::vector<std::pair<Kind, Cases>> kinds;
  for (Kind kind : {Kind::kUdp, Kind::kTcp}) {
    const std::string k = name_of(kind);
    if (params.transports.find(k) == std::string::npos) continue;
    Cases c{};
    c.base_lat = row(k + "_baseline_pingpong", k + " ping-pong: blocking send/recv, 2 threads");
    c.uraft_lat = row(k + "_uraft_pingpong", k + " ping-pong: TransportRpc::call");
    const std::string inflight = std::to_string(params.inflight) + " in flight";
    c.base_tput = row(k + "_baseline_inflight", k + " " + inflight + ": blocking, 2 threads");
    c.uraft_tput = row(k + "_uraft_inflight", k + " " + inflight + ": TransportRpc");
    ratios.push_back(Ratio{k + "_latency_p50_ratio", k + " latency p50: uraft / baseline", {},
                           kLatencyFloor, true});
    c.r_p50 = ratios.size() - 1;
    ratios.push_back(Ratio{k + "_latency_p99_ratio", k + " latency p99: uraft / baseline", {},
                           kLatencyFloor, true});
    c.r_p99 = ratios.size() - 1;
    ratios.push_back(Ratio{k + "_throughput_ratio", k + " throughput: uraft / baseline", {},
                           kThroughputFloor, false});
    c.r_tput = ratios.size() - 1;
    kinds.emplace_back(kind, c);
  }

  bool failed = false;
  for (unsigned round = 0; round < params.repeat; ++round) {
    for (const auto& [kind, c] : kinds) {
      BaselineRound b = run_baseline(kind, params, sizes, false);
      UraftRound u = run_uraft(kind, params, false);
      failed |= b.failed || u.failures > 0;
      const Latency bl = summarize(std::move(b.latencies_ns));
      const Latency ul = summarize(std::move(u.latencies_ns));
      rows[c.base_lat].p50_ns.push_back(bl.p50);
      rows[c.base_lat].p99_ns.push_back(bl.p99);
      rows[c.uraft_lat].p50_ns.push_back(ul.p50);
      rows[c.uraft_lat].p99_ns.push_back(ul.p99);
      ratios[c.r_p50].per_round.push_back(ul.p50 / bl.p50);
      ratios[c.r_p99].per_round.push_back(ul.p99 / bl.p99);

      BaselineRound bt = run_baseline(kind, params, sizes, true);
      UraftRound ut = run_uraft(kind, params, true);
      failed |= bt.failed || ut.failures > 0;
      rows[c.base_tput].calls_per_s.push_back(bt.calls_per_s);
      rows[c.uraft_tput].calls_per_s.push_back(ut.calls_per_s);
      ratios[c.r_tput].per_round.push_back(ut.calls_per_s / bt.calls_per_s);
    }
    std::fprintf(stderr, "net_bench: round %u of %u done\n", round + 1, params.repeat);
  }

  std::size_t width = 10;
  for (const Row& r : rows) width = std::max(width, r.label.size());
  for (const Ratio& q : ratios) width = std::max(width, q.label.size());
  const int w = static_cast<int>(width);
  std::printf("\npayload %zu bytes: request %zu, reply %zu bytes on the wire; %u rounds; "
              "%llu ping-pong calls, %llu pipelined calls per round\n",
              params.payload, sizes.request, sizes.reply, params.repeat,
              static_cast<unsigned long long>(params.calls),
              static_cast<unsigned long long>(params.pipelined));
  std::printf("\n%-*s  %10s  %10s  %12s\n", w, "case", "p50 us", "p99 us", "calls/s");
  std::printf("%s\n", std::string(width + 38, '-').c_str());
  for (const Row& r : rows) {
    if (!r.p50_ns.empty()) {
      std::printf("%-*s  %10.1f  %10.1f  %12s\n", w, r.label.c_str(), median(r.p50_ns) / 1e3,
                  median(r.p99_ns) / 1e3, "-");
    } else {
      std::printf("%-*s  %10s  %10s  %12.0f\n", w, r.label.c_str(), "-", "-",
                  median(r.calls_per_s));
    }
  }
  std::printf("\n%-*s  %8s  %8s\n", w, "ratio", "value", "floor");
  std::printf("%s\n", std::string(width + 32, '-').c_str());
  bool floors_ok = true;
  for (const Ratio& q : ratios) {
    floors_ok &= q.ok();
    std::printf("%-*s  %8.3f  %s%-6.2f  %s\n", w, q.label.c_str(), q.value(),
                q.at_most ? "<=" : ">=", q.floor, q.ok() ? "ok" : "MISSED");
  }
  std::printf("\nEach value is the median over rounds; a ratio is the median of the per-round "
              "ratios.\n");
  if (!params.json_path.empty() && !write_json(params, sizes, rows, ratios)) return 1;
  if (failed) return 1;
  return params.enforce && !floors_ok ? 2 : 0;
}

}  // namespace
}  // namespace uraft::bench

int main(int argc, char** argv) {
  try {
    return uraft::bench::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "net_bench: %s\n", e.what());
    return 1;
  }
}
