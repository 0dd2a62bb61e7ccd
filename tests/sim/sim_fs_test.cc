// SimFs: what a crash keeps (the synced, a prefix of the rest, maybe a torn sector run), and
// the real WAL over it recovering every acknowledged write.
#include "tests/sim/sim_fs.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <cstring>

#include "core/loop.h"
#include "raft/wal_storage.h"

namespace uraft::sim {
namespace {

std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

Task<std::string> read_all(SimFs& fs, int dir, std::string name) {
  const IoResult fd = co_await fs.open(dir, name, O_RDONLY, 0);
  if (!fd.ok()) co_return "<missing>";
  std::uint64_t size = 0;
  (void)fs.file_size(fd.res, size);
  std::string out(size, '\0');
  (void)co_await fs.read(fd.res, std::span(reinterpret_cast<std::byte*>(out.data()), out.size()),
                         0);
  fs.close_now(fd.res);
  co_return out;
}

TEST_CASE(
    "SimFs: a crash keeps synced data and a prefix of the rest; names need a directory sync") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    loop->run([](Loop& l) -> Task<void> {
      SimFs fs;
      const int dir = fs.open_dir("/d").res;
      const int fd = (co_await fs.open(dir, "f", O_RDWR | O_CREAT, 0644)).res;
      const std::vector<std::byte> a = bytes(std::string(1000, 'a'));
      const std::vector<std::byte> b = bytes(std::string(1000, 'b'));
      CHECK((co_await fs.write(fd, a, 0)).res == 1000);
      CHECK((co_await fs.fdatasync(fd)).ok());
      CHECK((co_await fs.fsync(dir)).ok());  // The name too.
      CHECK((co_await fs.write(fd, b, 1000)).res == 1000);
      const int other = (co_await fs.open(dir, "g", O_RDWR | O_CREAT, 0644)).res;
      CHECK((co_await fs.write(other, a, 0)).res == 1000);
      CHECK((co_await fs.fdatasync(other)).ok());  // Its data, but not its name.
      CHECK(co_await read_all(fs, dir, "f") == std::string(1000, 'a') + std::string(1000, 'b'));

      fs.crash(l.rng());
      const int d2 = fs.open_dir("/d").res;
      const std::string f = co_await read_all(fs, d2, "f");
      // The synced 1000 'a's, then a prefix of the 'b's ending at a sector boundary (or all).
      REQUIRE(f.size() >= 1000);
      CHECK(f.substr(0, 1000) == std::string(1000, 'a'));
      CHECK(f.substr(1000) == std::string(f.size() - 1000, 'b'));
      CHECK((f.size() == 1000 || f.size() == 2000 || f.size() % SimFs::kSectorBytes == 0));
      const std::string g = co_await read_all(fs, d2, "g");
      CHECK((g == "<missing>" || g == std::string(1000, 'a')));
    }(*loop));
  }
}

TEST_CASE("SimFs: fds die with the crash, and a sync that began before it makes nothing durable") {
  auto loop = Loop::simulated({.seed = 3});
  loop->run([](Loop& l) -> Task<void> {
    SimFs fs;
    const int dir = fs.open_dir("/d").res;
    const int fd = (co_await fs.open(dir, "f", O_RDWR | O_CREAT, 0644)).res;
    (void)co_await fs.fsync(dir);
    std::string lock_holder;
    const int lock = fs.lock(dir, "LOCK", lock_holder).res;
    CHECK(fs.lock(dir, "LOCK", lock_holder).error() == EWOULDBLOCK);
    fs.close_now(lock);
    CHECK(fs.lock(dir, "LOCK", lock_holder).ok());
    CHECK((co_await fs.write(fd, bytes("hello"), 0)).res == 5);
    fs.crash(l.rng());
    CHECK((co_await fs.write(fd, bytes("x"), 0)).error() == EBADF);
    CHECK((co_await fs.fdatasync(fd)).error() == EBADF);
  }(*loop));
}

TEST_CASE("SimFs: ENOSPC once the space is spent, EIO at the configured rate") {
  auto loop = Loop::simulated({.seed = 5});
  loop->run([](Loop&) -> Task<void> {
    SimFs fs;
    const int dir = fs.open_dir("/d").res;
    const int fd = (co_await fs.open(dir, "f", O_RDWR | O_CREAT, 0644)).res;
    fs.set_space_left(10);
    CHECK((co_await fs.write(fd, bytes("0123456789"), 0)).res == 10);
    CHECK((co_await fs.write(fd, bytes("more"), 10)).error() == ENOSPC);
    CHECK((co_await fs.write(fd, bytes("over"), 0)).res == 4);  // Overwrites take no space.
    SimDiskOptions o;
    o.eio_per_million = 1'000'000;
    fs.set_options(o);
    CHECK((co_await fs.fdatasync(fd)).error() == EIO);
    CHECK(fs.io_errors() == 1);
  }(*loop));
}

TEST_CASE("SimFs: the WAL over it recovers every acknowledged append across crashes") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto loop = Loop::simulated({.seed = seed});
    loop->run([](Loop& l) -> Task<void> {
      auto fs = std::make_shared<SimFs>();
      WalOptions o;
      o.files = fs;
      o.segment_bytes = 16 * 1024;
      o.group_bytes_max = 4096;
      o.warn = [](std::string_view) {};
      std::uint64_t acked = 0;
      for (int round = 0; round < 4; ++round) {
        std::unique_ptr<WalStorage> wal = co_await WalStorage::open("/data", o);
        const RecoveredState r = co_await wal->load();
        REQUIRE(r.entries.size() >= acked);
        for (std::size_t i = 0; i < acked; ++i)
          CHECK(r.entries[i].command == "entry " + std::to_string(i + 1));
        const std::uint64_t first = r.entries.size() + 1;
        acked = r.entries.size();
        for (std::uint64_t i = first; i < first + 50; ++i) {
          std::vector<LogEntry> e{LogEntry{Term{1}, "entry " + std::to_string(i)}};
          co_await wal->append(LogIndex{i}, std::move(e));
          acked = i;
        }
        // More, not awaited: the crash may keep any prefix of them.
        const std::uint64_t more = acked + 1;
        std::vector<LogEntry> e{LogEntry{Term{1}, "entry " + std::to_string(more)}};
        Scope pending;
        pending.spawn([](WalStorage* w, std::uint64_t at, std::vector<LogEntry> es) -> Task<void> {
          try {
            co_await w->append(LogIndex{at}, std::move(es));
          } catch (const std::exception&) {
          }
        }(wal.get(), more, std::move(e)));
        co_await sleep_for(std::chrono::microseconds(l.rng().uniform(0, 3000)));
        fs->crash(l.rng());
        co_await pending.join();
        try {
          co_await wal->close();
        } catch (const std::exception&) {
        }
      }
    }(*loop));
  }
}

}  // namespace
}  // namespace uraft::sim
