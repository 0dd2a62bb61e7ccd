// The service's wire format for a forwarded job's replies (kv/service.h): what a leader sends
// back to a follower round-trips, and anything malformed from a peer is refused, not trusted.
#include <doctest/doctest.h>

#include <string>

#include "kv/batch.h"
#include "kv/resp.h"
#include "kv/service.h"

namespace uraft::kv {
namespace {

BatchReplies sample() {
  BatchReplies r;
  for (std::string_view reply : {std::string_view("+OK\r\n"), std::string_view("$-1\r\n"),
                                 std::string_view(":42\r\n"), std::string_view("")}) {
    r.bytes += reply;
    r.ends.push_back(r.bytes.size());
  }
  return r;
}

TEST_CASE("encode_replies round-trips through decode_replies") {
  // Goal: every reply comes back whole and in order, empty ones included.
  const BatchReplies in = sample();
  BatchReplies out;
  REQUIRE(decode_replies(encode_replies(in), out));
  REQUIRE(out.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out.reply(i) == in.reply(i));
  BatchReplies none;
  REQUIRE(decode_replies(encode_replies(BatchReplies{}), none));
  CHECK(none.size() == 0);
}

TEST_CASE("decode_replies refuses every truncation and bad lengths") {
  // Goal: a peer's malformed answer is refused (the follower replies an error), never read
  // out of bounds: truncated payloads, lengths past the end, trailing bytes, huge counts.
  const std::string good = encode_replies(sample());
  BatchReplies out;
  for (std::size_t n = 0; n < good.size(); ++n) {
    CHECK_FALSE(decode_replies(std::string_view(good).substr(0, n), out));
  }
  CHECK_FALSE(decode_replies(good + "x", out));
  std::string long_length = good;
  long_length[4] = static_cast<char>(0xff);  // The first reply claims 255+ bytes.
  CHECK_FALSE(decode_replies(long_length, out));
  const std::string huge_count("\xff\xff\xff\xff", 4);
  CHECK_FALSE(decode_replies(huge_count, out));
}

}  // namespace
}  // namespace uraft::kv
