// libFuzzer target for kv/resp.h, with kv/batch.h, kv/store.h and kv/commands.h on the same
// bytes. Any input must:
//   - parse to the same requests and the same final status whether fed whole, byte by byte or
//     in pieces (the parser is split-independent), and under the unauthenticated bounds to a
//     prefix of those requests;
//   - give requests that re-encode (append_request) and parse back to the same argv;
//   - as a batch entry or a snapshot, decode to an error or to something that re-encodes to
//     exactly the input (both formats are canonical);
//   - never crash route_command, Store::apply/read or reply_length.
// Build: meson setup -Dfuzz=true with clang; run: fuzz_resp -max_total_time=60 corpus/
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/batch.h"
#include "kv/commands.h"
#include "kv/resp.h"
#include "kv/store.h"
#include "net/codec.h"
#include "net/crc32c.h"
#include "net/little_endian.h"

namespace {

using uraft::kv::ParseStatus;
using Argv = std::vector<std::string>;

struct Outcome {
  std::vector<Argv> requests;
  ParseStatus last = ParseStatus::kNeedMore;
  std::optional<uraft::kv::RespError> error;

  bool operator==(const Outcome&) const = default;
};

void drain(uraft::kv::RespParser& p, Outcome& o) {
  uraft::kv::Request r;
  for (;;) {
    o.last = p.next(r);
    if (o.last != ParseStatus::kRequest) break;
    if (r.argv.empty()) std::abort();
    o.requests.emplace_back(r.argv.begin(), r.argv.end());
  }
  o.error = p.error();
}

Outcome parse_in_pieces(std::string_view input, std::size_t piece, bool unauthenticated = false) {
  uraft::kv::RespParser p;
  p.set_unauthenticated(unauthenticated);
  Outcome o;
  for (std::size_t pos = 0; pos < input.size() && o.last != ParseStatus::kError; pos += piece) {
    p.feed(input.substr(pos, piece));
    drain(p, o);
  }
  if (input.empty()) drain(p, o);
  if (p.buffered_bytes() > input.size()) std::abort();
  return o;
}

void check_parser(std::string_view input) {
  const Outcome whole = parse_in_pieces(input, input.size() + 1);
  if (whole.last == ParseStatus::kError && !whole.error) std::abort();
  if (input.size() <= 4096 && parse_in_pieces(input, 1) != whole) std::abort();
  if (parse_in_pieces(input, 7) != whole) std::abort();
  // Tighter bounds only ever stop parsing earlier: their requests are a prefix of the others.
  const Outcome tight = parse_in_pieces(input, input.size() + 1, true);
  if (tight.requests.size() > whole.requests.size() ||
      !std::equal(tight.requests.begin(), tight.requests.end(), whole.requests.begin())) {
    std::abort();
  }

  // Round trip through the encoder, and a pass through routing and the store.
  std::string again;
  for (const Argv& argv : whole.requests) {
    const std::vector<std::string_view> views(argv.begin(), argv.end());
    uraft::kv::append_request(again, views);
  }
  if (parse_in_pieces(again, again.size() + 1).requests != whole.requests) std::abort();

  uraft::kv::Store store;
  uraft::kv::ClientSession session;
  const uraft::kv::LocalSettings settings{"pw"};
  uraft::kv::BatchEncoder batch;
  std::string out;
  for (const Argv& argv : whole.requests) {
    const std::vector<std::string_view> views(argv.begin(), argv.end());
    const uraft::kv::Routed routed = uraft::kv::route_command(views, session, settings, out);
    if (routed.route == uraft::kv::Route::kWrite && !batch.add(views)) std::abort();
    store.apply(views, out);
    store.read(views, out);
  }
  // Every reply is well-formed RESP: the concatenation splits into whole replies.
  for (std::string_view rest = out; !rest.empty();) {
    const auto n = uraft::kv::reply_length(rest);
    if (!n || *n == 0) std::abort();
    rest.remove_prefix(*n);
  }
  const std::string entry = batch.take();
  uraft::kv::BatchReplies replies;
  if (uraft::kv::apply_batch(store, entry, replies)) std::abort();
}

void check_batch(std::string_view input) {
  uraft::kv::DecodedBatch d;
  if (uraft::kv::decode_batch(input, d)) return;
  std::vector<std::vector<std::string_view>> commands;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto c = d.command(i);
    commands.emplace_back(c.begin(), c.end());
  }
  if (uraft::kv::encode_batch(commands) != input) std::abort();
  uraft::kv::Store store;
  uraft::kv::BatchReplies replies;
  if (uraft::kv::apply_batch(store, input, replies)) std::abort();
  if (replies.size() != d.size()) std::abort();
}

void check_snapshot(std::string_view input) {
  uraft::kv::Store store;
  if (store.restore(input)) return;
  if (store.snapshot() != input) std::abort();
}

// The snapshot body, which the checksum would otherwise keep the fuzzer from reaching: the
// input wrapped in a valid header and CRC.
void check_snapshot_body(std::string_view input) {
  std::string wrapped(uraft::kv::kSnapshotMagic);
  wrapped += static_cast<char>(uraft::kv::kSnapshotVersion);
  wrapped += input;
  const std::uint32_t crc = uraft::crc32c(uraft::byte_span(wrapped));
  char crc_bytes[4];
  uraft::store_le(crc_bytes, crc, 4);
  wrapped.append(crc_bytes, 4);
  check_snapshot(wrapped);
}

void check_reply_length(std::string_view input) {
  const auto n = uraft::kv::reply_length(input);
  if (n && *n > input.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_parser(input);
  check_batch(input);
  check_snapshot(input);
  check_snapshot_body(input);
  check_reply_length(input);
  return 0;
}
