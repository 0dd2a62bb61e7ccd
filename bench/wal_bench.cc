// wal_bench: what durable appends cost. W concurrent writers (coroutines on one io_uring
// loop) each append 256-byte entries to a WalStorage and await durability; the baseline,
// on the same file system, is a plain loop doing one pwrite + fdatasync per record. Group
// commit lets one fdatasync cover every append that arrived while the previous one ran.
// Reports appends/s, MB/s and latency percentiles per writer count, and the ratios to the
// baseline, with the floors: >= 10x the baseline's appends/s at 64 writers, and at 1 writer
// a median latency within 1.2x of the baseline's.
//
// A "prealloc" row (pwrite + fdatasync into a preallocated file) is shown for reference.
//
//   wal_bench [--dir /path/on/the/fs] [--writers 1,16,64,256] [--duration-ms 1000]
//             [--record-bytes 256] [--json FILE]
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/report.h"
#include "core/loop.h"
#include "core/scope.h"
#include "raft/wal_storage.h"

namespace uraft::bench {
namespace {

struct Options {
  std::string dir;
  std::vector<int> writers{1, 16, 64, 256};
  double duration_ms = 1000;
  std::size_t record_bytes = 256;
  std::string json_path;
};

struct Row {
  std::string mode;  // "baseline" or "wal"
  int writers = 1;
  std::uint64_t appends = 0;
  double seconds = 0;
  double appends_per_s = 0;
  double mb_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  std::uint64_t groups = 0;  // wal: group commits (fdatasyncs of records)
};

void finish(Row& row, std::vector<double>& latencies_us, std::size_t record_bytes) {
  row.appends = latencies_us.size();
  row.appends_per_s = static_cast<double>(row.appends) / row.seconds;
  row.mb_per_s = row.appends_per_s * static_cast<double>(record_bytes) / 1e6;
  const Latency l = summarize(latencies_us);
  row.p50_us = l.p50;
  row.p99_us = l.p99;
  row.p999_us = l.p999;
}

// One pwrite + fdatasync per record, appending to a fresh file. With `preallocate`, the
// file is fallocate()d first (as WalStorage's segments are): shown for reference only, the
// ratios are to the plain baseline.
Row run_baseline(const Options& o, const std::string& dir, bool preallocate) {
  const std::string path = dir + "/baseline.dat";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("open baseline file");
    std::exit(1);
  }
  if (preallocate && (::fallocate(fd, 0, 0, 64 << 20) != 0 || ::fsync(fd) != 0)) {
    std::perror("fallocate baseline file");
    std::exit(1);
  }
  std::string record(o.record_bytes, 'b');
  std::vector<double> latencies;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double, std::milli>(o.duration_ms);
  std::uint64_t offset = 0;
  for (auto now = start; now < deadline;) {
    if (::pwrite(fd, record.data(), record.size(), static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      std::perror("baseline write");
      std::exit(1);
    }
    offset += record.size();
    const auto after = Clock::now();
    latencies.push_back(std::chrono::duration<double, std::micro>(after - now).count());
    now = after;
  }
  Row row;
  row.mode = preallocate ? "prealloc" : "baseline";
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  finish(row, latencies, o.record_bytes);
  ::close(fd);
  std::filesystem::remove(path);
  return row;
}

struct WalRun {
  WalStorage* wal = nullptr;
  std::uint64_t next_index = 1;
  TimePoint deadline;
  std::string command;
  std::vector<double> latencies_us;
};

Task<void> writer(WalRun* run) {
  Loop& loop = Loop::current();
  while (loop.now() < run->deadline) {
    std::vector<LogEntry> entries;
    entries.push_back(LogEntry{Term(1), run->command});
    const TimePoint t0 = loop.now();
    co_await run->wal->append(LogIndex(run->next_index++), std::move(entries));
    run->latencies_us.push_back(std::chrono::duration<double, std::micro>(loop.now() - t0).count());
  }
}

Task<Row> run_wal_async(Options o, std::string dir, int writers) {
  WalOptions wo;
  auto wal = co_await WalStorage::open(dir, wo);
  // Warm up: the first segment is created and preallocated outside the timed run.
  std::vector<LogEntry> first;
  first.push_back(LogEntry{Term(1), std::string(o.record_bytes, 'w')});
  co_await wal->append(LogIndex(1), std::move(first));
  WalRun run;
  run.wal = wal.get();
  run.next_index = 2;
  run.command = std::string(o.record_bytes, 'w');
  Loop& loop = Loop::current();
  const TimePoint start = loop.now();
  run.deadline = start + std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(o.duration_ms));
  const std::uint64_t groups0 = wal->stats().groups;
  Scope scope;
  for (int i = 0; i < writers; ++i) scope.spawn(writer(&run));
  co_await scope.join();
  Row row;
  row.mode = "wal";
  row.writers = writers;
  row.seconds = std::chrono::duration<double>(loop.now() - start).count();
  row.groups = wal->stats().groups - groups0;
  finish(row, run.latencies_us, o.record_bytes);
  co_await wal->close();
  co_return row;
}

Row run_wal(const Options& o, const std::string& dir, int writers) {
  const std::string sub = dir + "/wal-" + std::to_string(writers);
  std::filesystem::remove_all(sub);
  auto loop = Loop::uring();
  Row row = loop->run(run_wal_async(o, sub, writers));
  std::filesystem::remove_all(sub);
  return row;
}

int main_impl(int argc, char** argv) {
  Options o;
  CLI::App app{"wal_bench: durable appends with group commit vs pwrite+fdatasync per record"};
  app.add_option("--dir", o.dir, "Directory on the file system to measure (default: a temp dir)");
  app.add_option("--writers", o.writers, "Concurrent writer counts")->delimiter(',');
  app.add_option("--duration-ms", o.duration_ms, "Length of each run");
  app.add_option("--record-bytes", o.record_bytes, "Bytes per appended entry");
  app.add_option("--json", o.json_path, "Also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  std::string dir = o.dir;
  bool made = false;
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "uraft-wal-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    made = true;
  }
  std::filesystem::create_directories(dir);

  std::vector<Row> rows;
  rows.push_back(run_baseline(o, dir, false));
  rows.push_back(run_baseline(o, dir, true));
  for (const int w : o.writers) rows.push_back(run_wal(o, dir, w));
  const Row& base = rows.front();

  std::printf("wal_bench: %zu-byte records, %.0f ms per run, directory %s\n", o.record_bytes,
              o.duration_ms, dir.c_str());
  std::printf("%-9s %7s %11s %8s %9s %9s %9s %9s %10s %10s\n", "mode", "writers", "appends/s",
              "MB/s", "p50 us", "p99 us", "p99.9 us", "per sync", "x base/s", "x base p50");
  for (const Row& r : rows) {
    const double per_sync = r.groups > 0 ? static_cast<double>(r.appends) / static_cast<double>(r.groups) : 1.0;
    std::printf("%-9s %7d %11.0f %8.2f %9.1f %9.1f %9.1f %9.1f %10.2f %10.2f\n", r.mode.c_str(),
                r.writers, r.appends_per_s, r.mb_per_s, r.p50_us, r.p99_us, r.p999_us, per_sync,
                r.appends_per_s / base.appends_per_s, r.p50_us / base.p50_us);
  }
  bool floors_ok = true;
  std::string floor_lines;
  for (const Row& r : rows) {
    if (r.mode != "wal") continue;
    if (r.writers == 64) {
      const double x = r.appends_per_s / base.appends_per_s;
      const bool ok = x >= 10;
      floors_ok = floors_ok && ok;
      char buf[160];
      std::snprintf(buf, sizeof buf, "floor: 64 writers >= 10x baseline appends/s: %.1fx %s\n", x, ok ? "ok" : "MISSED");
      floor_lines += buf;
    }
    if (r.writers == 1) {
      const double x = r.p50_us / base.p50_us;
      const bool ok = x <= 1.2;
      floors_ok = floors_ok && ok;
      char buf[160];
      std::snprintf(buf, sizeof buf, "floor: 1 writer p50 latency <= 1.2x baseline: %.2fx %s\n", x, ok ? "ok" : "MISSED");
      floor_lines += buf;
    }
  }
  std::printf("%s", floor_lines.c_str());

  if (!o.json_path.empty()) {
    FILE* f = std::fopen(o.json_path.c_str(), "w");
    if (f == nullptr) {
      std::perror("open --json file");
      return 1;
    }
    std::fprintf(f, "{\n  \"program\": \"wal_bench\",\n  \"record_bytes\": %zu,\n  \"duration_ms\": %.0f,\n  \"rows\": [\n",
                 o.record_bytes, o.duration_ms);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"mode\": \"%s\", \"writers\": %d, \"appends\": %llu, \"appends_per_s\": %.1f, "
                   "\"mb_per_s\": %.3f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
                   "\"syncs\": %llu, \"ratio_appends_per_s\": %.3f, \"ratio_p50\": %.3f}%s\n",
                   r.mode.c_str(), r.writers, static_cast<unsigned long long>(r.appends), r.appends_per_s,
                   r.mb_per_s, r.p50_us, r.p99_us, r.p999_us,
                   static_cast<unsigned long long>(r.mode == "wal" ? r.groups : r.appends),
                   r.appends_per_s / base.appends_per_s, r.p50_us / base.p50_us,
                   i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"floors_met\": %s\n}\n", floors_ok ? "true" : "false");
    std::fclose(f);
  }
  if (made) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace uraft::bench

int main(int argc, char** argv) { return uraft::bench::main_impl(argc, argv); }
