// etcd_load: a closed-loop write load on etcd's gRPC-gateway JSON API, for scripts/compare.sh.
// Each of --clients C connections (HTTP/1.1, keep-alive) has exactly one request outstanding:
// POST /v3/kv/put {"key": base64("key:NNNNNNNNNNNN"), "value": base64(B bytes)} with the key
// drawn uniformly from --keyspace keys; on the 200 reply it records the latency and sends the
// next. One thread, epoll, non-blocking sockets: the same shape as redis-benchmark, which
// drives uraftd and Redis in the comparison. Prints one JSON object (writes/s, p50/p99/p99.9).
//
// `etcd_load --probe DIR` instead prints the single-node floor for a 1-client write: the
// loopback TCP ping-pong RTT and one 4 KiB pwrite + fdatasync on DIR's file system (medians).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/report.h"

namespace {

using uraft::bench::median;
using uraft::bench::percentile;

using Clock = std::chrono::steady_clock;

// A reply larger than this is not a put reply: the run stops with an error.
constexpr std::size_t kReplyBytesMax = 64 * 1024;
constexpr int kEpollEventsMax = 256;

[[noreturn]] void fail_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) |
                            std::uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const std::uint32_t v = std::uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

sockaddr_in parse_endpoint(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("endpoint must be HOST:PORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  if (inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("endpoint host must be an IPv4 address: " + endpoint);
  }
  return addr;
}

int connect_blocking(const sockaddr_in& addr) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    fail_errno("connect");
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// How far `in` holds one complete HTTP response: its length in bytes, 0 if incomplete.
// Understands Content-Length and chunked bodies (grpc-gateway may send either).
std::size_t response_length(std::string_view in, int& status) {
  const auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return 0;
  const std::string_view head = in.substr(0, head_end);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") throw std::runtime_error("not HTTP");
  status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::string lower(head);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::size_t body = head_end + 4;
  if (const auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
    const std::size_t n = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
    return in.size() >= body + n ? body + n : 0;
  }
  if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    std::size_t at = body;
    for (;;) {
      const auto line_end = in.find("\r\n", at);
      if (line_end == std::string_view::npos) return 0;
      const std::size_t n = std::strtoull(std::string(in.substr(at, line_end - at)).c_str(),
                                          nullptr, 16);
      at = line_end + 2 + n + 2;
      if (in.size() < at) return 0;
      if (n == 0) return at;
    }
  }
  return body;  // no body
}

struct Connection {
  int fd = -1;
  std::string request;
  std::size_t sent = 0;
  std::string reply;
  Clock::time_point started;
};

struct Result {
  std::uint64_t writes = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

class Load {
 public:
  Load(sockaddr_in addr, int clients, int payload, int keyspace)
      : addr_(addr), keyspace_(keyspace), value64_(base64(std::string(payload, 'x'))) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) fail_errno("epoll_create1");
    connections_.resize(clients);
    for (int i = 0; i < clients; ++i) {
      Connection& c = connections_[i];
      c.fd = connect_blocking(addr_);
      if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) fail_errno("fcntl");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) fail_errno("epoll_ctl");
    }
  }
  ~Load() {
    for (auto& c : connections_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epoll_);
  }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  // Runs for warmup + duration; counts only replies that complete after the warmup.
  Result run(double warmup_s, double duration_s) {
    Result result;
    for (std::size_t i = 0; i < connections_.size(); ++i) send_next(i);
    const auto t0 = Clock::now();
    const auto measure_from = t0 + std::chrono::duration<double>(warmup_s);
    const auto end = measure_from + std::chrono::duration<double>(duration_s);
    epoll_event events[kEpollEventsMax];
    char buf[16 * 1024];
    for (;;) {
      const auto now = Clock::now();
      if (now >= end) break;
      const int n = epoll_wait(epoll_, events, kEpollEventsMax, 10);
      if (n < 0 && errno != EINTR) fail_errno("epoll_wait");
      for (int e = 0; e < n; ++e) {
        const std::size_t i = events[e].data.u32;
        Connection& c = connections_[i];
        if (events[e].events & EPOLLOUT) flush(i);
        if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
        for (;;) {
          const ssize_t got = recv(c.fd, buf, sizeof buf, 0);
          if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (got < 0) fail_errno("recv");
          if (got == 0) throw std::runtime_error("etcd closed a connection");
          c.reply.append(buf, static_cast<std::size_t>(got));
          if (c.reply.size() > kReplyBytesMax) throw std::runtime_error("reply too large");
        }
        int status = 0;
        const std::size_t len = response_length(c.reply, status);
        if (len == 0) continue;
        if (len != c.reply.size()) throw std::runtime_error("reply with no request outstanding");
        const auto done = Clock::now();
        if (done >= measure_from && done < end) {
          if (status == 200) {
            ++result.writes;
            result.latencies_us.push_back(
                std::chrono::duration<double, std::micro>(done - c.started).count());
          } else {
            if (result.errors == 0) {
              std::fprintf(stderr, "etcd_load: HTTP %d: %s\n", status, c.reply.c_str());
            }
            ++result.errors;
          }
        }
        c.reply.clear();
        send_next(i);
      }
    }
    result.seconds = duration_s;
    return result;
  }

 private:
  void send_next(std::size_t i) {
    Connection& c = connections_[i];
    char key[32];
    std::snprintf(key, sizeof key, "key:%012u",
                  static_cast<unsigned>(std::uniform_int_distribution<int>(0, keyspace_ - 1)(rng_)));
    const std::string body = R"({"key":")" + base64(key) + R"(","value":")" + value64_ + "\"}";
    c.request = "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
    c.sent = 0;
    c.started = Clock::now();
    flush(i);
  }

  void flush(std::size_t i) {
    Connection& c = connections_[i];
    while (c.sent < c.request.size()) {
      const ssize_t n = send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent,
                             MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) fail_errno("send");
      c.sent += static_cast<std::size_t>(n);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (c.sent < c.request.size() ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) != 0) fail_errno("epoll_ctl");
  }

  sockaddr_in addr_;
  int keyspace_;
  std::string value64_;
  int epoll_ = -1;
  std::vector<Connection> connections_;
  std::mt19937_64 rng_{12345};
};

// Flush requests completed and milliseconds spent on them by the block device holding `dir`
// (/sys/dev/block/MAJ:MIN/stat, fields 16 and 17), or {0, 0} where the kernel does not say.
struct FlushStats {
  std::uint64_t flushes = 0;
  std::uint64_t ms = 0;
};

FlushStats device_flush_stats(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return {};
  const std::string path = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return {};
  std::uint64_t fields[17] = {};
  int n = 0;
  while (n < 17 && std::fscanf(f, "%lu", &fields[n]) == 1) ++n;
  std::fclose(f);
  if (n < 17) return {};
  return {fields[15], fields[16]};
}

// Loopback TCP ping-pong of 64 bytes between two threads with blocking sockets.
double probe_rtt_us(int rounds) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail_errno("bind");
  if (listen(listener, 1) != 0) fail_errno("listen");
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread echo([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[64];
    for (;;) {
      std::size_t got = 0;
      while (got < sizeof b) {
        const ssize_t n = recv(fd, b + got, sizeof b - got, 0);
        if (n <= 0) { close(fd); return; }
        got += static_cast<std::size_t>(n);
      }
      if (send(fd, b, sizeof b, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof b)) break;
    }
    close(fd);
  });
  const int fd = connect_blocking(addr);
  std::vector<double> rtts;
  char b[64] = {};
  for (int r = 0; r < rounds; ++r) {
    const auto t = Clock::now();
    if (send(fd, b, sizeof b, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof b)) fail_errno("send");
    std::size_t got = 0;
    while (got < sizeof b) {
      const ssize_t n = recv(fd, b + got, sizeof b - got, 0);
      if (n <= 0) fail_errno("recv");
      got += static_cast<std::size_t>(n);
    }
    rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  close(fd);
  echo.join();
  close(listener);
  return median(rtts);
}

// One 4 KiB pwrite + fdatasync at a time on a file in `dir`, in one of three ways:
//   append:      each write extends the file (fdatasync must also commit the new size);
//   preallocated: each write lands in fallocate()d space (commits the extent conversion);
//   overwrite:   each write rewrites the same written block (the device flush alone).
enum class SyncMode { kAppend, kPreallocated, kOverwrite };

struct SyncProbe {
  double median_us = 0;
  double min_us = 0;
};

SyncProbe probe_fdatasync_us(const std::string& dir, SyncMode mode, int rounds) {
  const std::string path = dir + "/etcd_load_probe.tmp";
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) fail_errno("open probe file");
  std::vector<char> block(4096, 'p');
  const off_t bytes = static_cast<off_t>(rounds) * 4096;
  if (mode == SyncMode::kPreallocated && fallocate(fd, 0, 0, bytes) != 0) fail_errno("fallocate");
  if (mode == SyncMode::kOverwrite) {
    if (pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size())) {
      fail_errno("pwrite");
    }
    if (fsync(fd) != 0) fail_errno("fsync");
  }
  std::vector<double> times;
  for (int r = 0; r < rounds; ++r) {
    const off_t at = mode == SyncMode::kOverwrite ? 0 : static_cast<off_t>(r) * 4096;
    const auto t = Clock::now();
    if (pwrite(fd, block.data(), block.size(), at) != static_cast<ssize_t>(block.size())) {
      fail_errno("pwrite");
    }
    if (fdatasync(fd) != 0) fail_errno("fdatasync");
    times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  close(fd);
  unlink(path.c_str());
  return {median(times), *std::min_element(times.begin(), times.end())};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Closed-loop PUT load on etcd's gRPC-gateway JSON API (POST /v3/kv/put)"};
  std::string endpoint = "127.0.0.1:2379";
  int clients = 16;
  int payload = 256;
  int keyspace = 100000;
  double duration = 5;
  double warmup = 1;
  std::string probe_dir;
  app.add_option("--endpoint", endpoint, "etcd client URL's HOST:PORT (the leader, ideally)")
      ->capture_default_str();
  app.add_option("--clients", clients, "Connections, each with one request outstanding")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--payload", payload, "Value size in bytes")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--keyspace", keyspace, "Keys are drawn uniformly from this many")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str();
  app.add_option("--duration", duration, "Seconds measured (after the warmup)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Seconds of load before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--probe", probe_dir,
                 "Print loopback RTT and one fdatasync on DIR's file system, then exit");
  CLI11_PARSE(app, argc, argv);
  try {
    if (!probe_dir.empty()) {
      const double rtt = probe_rtt_us(2000);
      const FlushStats before = device_flush_stats(probe_dir);
      const SyncProbe append = probe_fdatasync_us(probe_dir, SyncMode::kAppend, 200);
      const SyncProbe prealloc = probe_fdatasync_us(probe_dir, SyncMode::kPreallocated, 200);
      const SyncProbe overwrite = probe_fdatasync_us(probe_dir, SyncMode::kOverwrite, 200);
      const FlushStats after = device_flush_stats(probe_dir);
      // The device's own time per flush over the probe (other processes' flushes included).
      const double device_flush_us =
          after.flushes > before.flushes
              ? 1000.0 * static_cast<double>(after.ms - before.ms) /
                    static_cast<double>(after.flushes - before.flushes)
              : 0;
      // "One fdatasync": the median of the cheapest way, as a blocking caller sees it.
      std::printf(
          "{\"loopback_rtt_us\": %.1f, \"fdatasync_us\": %.1f, \"fdatasync_min_us\": %.1f, "
          "\"fdatasync_append_us\": %.1f, \"fdatasync_preallocated_us\": %.1f, "
          "\"fdatasync_overwrite_us\": %.1f, \"device_flush_us\": %.1f}\n",
          rtt, std::min({append.median_us, prealloc.median_us, overwrite.median_us}),
          std::min({append.min_us, prealloc.min_us, overwrite.min_us}), append.median_us,
          prealloc.median_us, overwrite.median_us, device_flush_us);
      return 0;
    }
    Load load(parse_endpoint(endpoint), clients, payload, keyspace);
    Result r = load.run(warmup, duration);
    std::sort(r.latencies_us.begin(), r.latencies_us.end());
    std::printf(
        "{\"clients\": %d, \"payload\": %d, \"seconds\": %.1f, \"writes\": %llu, \"errors\": "
        "%llu, \"writes_per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f}\n",
        clients, payload, r.seconds, static_cast<unsigned long long>(r.writes),
        static_cast<unsigned long long>(r.errors), static_cast<double>(r.writes) / r.seconds,
        percentile(r.latencies_us, 0.5) / 1000, percentile(r.latencies_us, 0.99) / 1000,
        percentile(r.latencies_us, 0.999) / 1000);
    return r.errors == 0 && r.writes > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "etcd_load: %s\n", e.what());
    return 1;
  }
}
