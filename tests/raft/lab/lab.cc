#include "tests/raft/lab/lab.h"

#include "core/assert.h"
#include "core/loop.h"
#include "tests/raft/lab/lab_config.h"

namespace uraft::lab {

std::string encode_value(const Value& v) {
  std::string out;
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out.push_back('i');
    auto u = static_cast<std::uint64_t>(*i);
    for (int b = 0; b < 8; ++b, u >>= 8) out.push_back(static_cast<char>(u & 0xff));
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    out.push_back('s');
    out += *s;
  } else {
    out.push_back('n');
  }
  return out;
}

Value decode_value(std::string_view bytes) {
  URAFT_ASSERT(!bytes.empty());
  switch (bytes[0]) {
    case 'i': {
      URAFT_ASSERT(bytes.size() == 9);
      std::uint64_t u = 0;
      for (int b = 7; b >= 0; --b) {
        u = (u << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(1 + b)]);
      }
      return Value{static_cast<std::int64_t>(u)};
    }
    case 's':
      return Value{std::string(bytes.substr(1))};
    default:
      URAFT_ASSERT(bytes == "n");
      return Value{};
  }
}

std::string format_value(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return "<nil>";
}

std::string format_values(const std::vector<std::int64_t>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(values[i]);
  }
  out += ']';
  return out;
}

std::int64_t rand_int() { return static_cast<std::int64_t>(Loop::current().rng().next() >> 1); }
std::int64_t rand_int31() { return static_cast<std::int64_t>(Loop::current().rng().next() >> 33); }

std::string randstring(std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // base64 of 2n bytes is about 2.67n characters; n of them are kept. Each character is 6
  // random bits, which is what base64url of random bytes gives.
  std::string s;
  s.reserve(n);
  Rng& rng = Loop::current().rng();
  while (s.size() < n) s.push_back(kAlphabet[rng.uniform(0, 63)]);
  return s;
}

TestContext::TestContext() = default;
TestContext::~TestContext() = default;

Task<LabConfig*> TestContext::make_config(int n, bool unreliable, bool snapshot) {
  URAFT_ASSERT(cfg == nullptr);
  cfg = std::make_unique<LabConfig>(*this, n, unreliable, snapshot);
  co_await cfg->start_all();
  co_return cfg.get();
}

}  // namespace uraft::lab
