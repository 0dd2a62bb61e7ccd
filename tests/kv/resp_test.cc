// RESP2: the incremental request parser (arrays, inline commands, every limit and protocol
// error, pipelining, arbitrary splits) and the reply encoders.
#include <doctest/doctest.h>

// g++ 12 misreports "literal" + std::string as an overlapping memcpy (GCC PR 105329); these
// tests build expected replies that way, so the false positive is silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kv/resp.h"

namespace uraft::kv {
namespace {

using Argv = std::vector<std::string>;

// Feeds `input` in one go and collects every request until the parser needs more or fails.
struct Parsed {
  std::vector<Argv> requests;
  ParseStatus last = ParseStatus::kNeedMore;
  std::optional<RespError> error;
};

void drain(RespParser& p, Parsed& r) {
  Request req;
  for (;;) {
    r.last = p.next(req);
    if (r.last != ParseStatus::kRequest) break;
    r.requests.emplace_back(req.argv.begin(), req.argv.end());
  }
  r.error = p.error();
}

Parsed parse_all(std::string_view input) {
  RespParser p;
  p.feed(input);
  Parsed r;
  drain(p, r);
  return r;
}

// Feeds `input` in pieces whose sizes come from `sizes` (cycled), draining after each.
Parsed parse_split(std::string_view input, std::mt19937_64& rng, std::size_t piece_max) {
  RespParser p;
  Parsed r;
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t n = std::min<std::size_t>(input.size() - pos, 1 + rng() % piece_max);
    if (rng() % 2 == 0) {
      p.feed(input.substr(pos, n));
    } else {
      const std::span<char> space = p.prepare(n);
      REQUIRE(space.size() >= n);
      std::copy_n(input.data() + pos, n, space.data());
      p.commit(n);
    }
    pos += n;
    drain(p, r);
    if (r.last == ParseStatus::kError) break;
  }
  return r;
}

std::string request(std::initializer_list<std::string_view> argv) {
  std::string out;
  const std::vector<std::string_view> v(argv);
  append_request(out, v);
  return out;
}

std::string error_of(std::string_view input) {
  const Parsed r = parse_all(input);
  REQUIRE(r.last == ParseStatus::kError);
  REQUIRE(r.error.has_value());
  return r.error->message();
}

TEST_CASE("an array of bulk strings parses to its arguments") {
  // Goal: the form every client library sends.
  const Parsed r = parse_all("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0] == Argv{"SET", "k", "hello"});
  CHECK(r.last == ParseStatus::kNeedMore);
  CHECK_FALSE(r.error.has_value());
}

TEST_CASE("bulk strings carry any bytes, CR LF and NUL included") {
  // Goal: binary safety of the array form.
  std::string value("a\r\nb\0c", 6);
  const Parsed r = parse_all(request({"SET", "k", value}));
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0][2] == value);
  const Parsed empty = parse_all("*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
  REQUIRE(empty.requests.size() == 1);
  CHECK(empty.requests[0] == Argv{"GET", ""});
}

TEST_CASE("inline commands split on blanks and honour Redis's quoting") {
  // Goal: what telnet and nc send, with sdssplitargs's rules.
  CHECK(parse_all("PING\r\n").requests == std::vector<Argv>{{"PING"}});
  CHECK(parse_all("set k v\n").requests == std::vector<Argv>{{"set", "k", "v"}});
  CHECK(parse_all("  set \t k   v  \r\n").requests == std::vector<Argv>{{"set", "k", "v"}});
  CHECK(parse_all("set \"a b\" 'c d'\r\n").requests == std::vector<Argv>{{"set", "a b", "c d"}});
  CHECK(parse_all("echo \"\\x41\\n\\r\\t\\\\\\\"z\"\r\n").requests ==
        std::vector<Argv>{{"echo", "A\n\r\t\\\"z"}});
  CHECK(parse_all("echo 'it\\'s'\r\n").requests == std::vector<Argv>{{"echo", "it's"}});
  CHECK(parse_all("echo \"\"\r\n").requests == std::vector<Argv>{{"echo", ""}});
  CHECK(parse_all("echo a\"b c\"d\r\n").requests.empty());  // Closing quote then 'd': error.
  CHECK(parse_all("echo a\"b c\" d\r\n").requests == std::vector<Argv>{{"echo", "ab c", "d"}});
  // A NUL byte ends the line, as in Redis's C-string splitter.
  CHECK(parse_all(std::string_view("get k\0junk\r\n", 12)).requests ==
        std::vector<Argv>{{"get", "k"}});
  const Parsed r = parse_all("PING\r\n");
  CHECK(r.last == ParseStatus::kNeedMore);
}

TEST_CASE("inline requests report their form") {
  // Goal: the server can tell inline from array requests.
  RespParser p;
  p.feed("PING\r\n*1\r\n$4\r\nPING\r\n");
  Request r;
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  CHECK(r.inline_form);
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  CHECK_FALSE(r.inline_form);
}

TEST_CASE("unbalanced quotes in an inline request are a protocol error") {
  // Goal: Redis's "unbalanced quotes" error, for both quote kinds and a bad closing quote.
  CHECK(error_of("set \"abc\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("set 'abc\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("set \"a\"b\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("set 'a'b\r\n") == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("empty requests are skipped") {
  // Goal: "*0", "*-1" and blank lines produce no request, as in Redis.
  const Parsed r = parse_all("*0\r\n*-1\r\n\r\n   \n\n*1\r\n$4\r\nPING\r\n");
  CHECK(r.requests == std::vector<Argv>{{"PING"}});
  CHECK(r.last == ParseStatus::kNeedMore);
}

TEST_CASE("pipelined requests in one buffer come out in order, views stay valid") {
  // Goal: a pipeline parses in one pass, and earlier views survive later next() calls.
  std::string input = request({"SET", "a", "1"}) + "GET a\r\n" + request({"INCR", "a"}) +
                      request({"MGET", "a", "b", "c"});
  RespParser p;
  p.feed(input);
  std::vector<Request> reqs(5);
  std::size_t n = 0;
  while (n < reqs.size() && p.next(reqs[n]) == ParseStatus::kRequest) ++n;
  REQUIRE(n == 4);
  CHECK(Argv(reqs[0].argv.begin(), reqs[0].argv.end()) == Argv{"SET", "a", "1"});
  CHECK(Argv(reqs[1].argv.begin(), reqs[1].argv.end()) == Argv{"GET", "a"});
  CHECK(Argv(reqs[2].argv.begin(), reqs[2].argv.end()) == Argv{"INCR", "a"});
  CHECK(Argv(reqs[3].argv.begin(), reqs[3].argv.end()) == Argv{"MGET", "a", "b", "c"});
  CHECK(p.buffered_bytes() == 0);
}

TEST_CASE("a partial request waits for more bytes and is counted as buffered") {
  // Goal: kNeedMore at every cut, and buffered_bytes reports what is held.
  const std::string full = request({"SET", "key", "value"});
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    CAPTURE(cut);
    RespParser p;
    p.feed(full.substr(0, cut));
    Request r;
    CHECK(p.next(r) == ParseStatus::kNeedMore);
    CHECK(p.buffered_bytes() == cut);
    p.feed(full.substr(cut));
    REQUIRE(p.next(r) == ParseStatus::kRequest);
    CHECK(Argv(r.argv.begin(), r.argv.end()) == Argv{"SET", "key", "value"});
    CHECK(p.next(r) == ParseStatus::kNeedMore);
    CHECK(p.buffered_bytes() == 0);
  }
}

TEST_CASE("byte by byte and random splits parse exactly like one buffer") {
  // Goal: the parser's result does not depend on how the stream was cut.
  std::string input;
  input += request({"SET", "k", std::string(300, 'x')});
  input += "PING\r\n*0\r\n";
  input += "set \"quoted key\" 'v'\r\n";
  input += request({"DEL", "a", "b", "c"});
  input += "\r\n";
  input += request({"GET", std::string(5000, 'y')});
  const Parsed whole = parse_all(input);
  REQUIRE(whole.requests.size() == 5);
  std::mt19937_64 rng(12345);
  for (const std::size_t piece_max : {std::size_t{1}, std::size_t{2}, std::size_t{7},
                                      std::size_t{64}, std::size_t{4096}}) {
    for (int round = 0; round < 20; ++round) {
      CAPTURE(piece_max);
      const Parsed split = parse_split(input, rng, piece_max);
      CHECK(split.requests == whole.requests);
      CHECK(split.last == ParseStatus::kNeedMore);
    }
  }
}

TEST_CASE("random requests round-trip through the encoder and a randomly split stream") {
  // Goal: a deterministic property test: append_request then parse gives back the argv,
  // for binary arguments, in both the array form and (printable, quoted) the inline form.
  std::mt19937_64 rng(20261125);
  for (int round = 0; round < 200; ++round) {
    std::vector<Argv> sent;
    std::string stream;
    const int count = 1 + static_cast<int>(rng() % 20);
    for (int c = 0; c < count; ++c) {
      Argv argv;
      const std::size_t argc = 1 + rng() % 6;
      for (std::size_t a = 0; a < argc; ++a) {
        std::string arg(rng() % 40, '\0');
        for (char& ch : arg) ch = static_cast<char>(rng() % 256);
        argv.push_back(arg);
      }
      if (rng() % 3 == 0) {
        // Inline: every byte as \xHH inside double quotes (an empty argument is "").
        for (std::size_t a = 0; a < argv.size(); ++a) {
          stream += a == 0 ? "\"" : " \"";
          for (const char ch : argv[a]) {
            static constexpr char kHex[] = "0123456789abcdef";
            stream += "\\x";
            stream += kHex[static_cast<unsigned char>(ch) >> 4];
            stream += kHex[static_cast<unsigned char>(ch) & 15];
          }
          stream += '"';
        }
        stream += "\r\n";
      } else {
        std::vector<std::string_view> views(argv.begin(), argv.end());
        append_request(stream, views);
      }
      sent.push_back(std::move(argv));
    }
    const Parsed r = parse_split(stream, rng, 1 + rng() % 100);
    REQUIRE(r.last == ParseStatus::kNeedMore);
    CHECK(r.requests == sent);
  }
}

TEST_CASE("invalid multibulk lengths are refused with Redis's words") {
  // Goal: a count that is not a number, or over kArrayElementsMax.
  const std::string m = "Protocol error: invalid multibulk length";
  CHECK(error_of("*abc\r\n") == m);
  CHECK(error_of("*\r\n") == m);
  CHECK(error_of("*+3\r\n") == m);
  CHECK(error_of("*03\r\n") == m);
  CHECK(error_of("*3\rx") == m);
  CHECK(error_of("*99999999999999999999999\r\n") == m);
  CHECK(error_of("*" + std::to_string(kArrayElementsMax + 1) + "\r\n") == m);
  // At the limit the count is accepted (and waits for its elements).
  const Parsed at = parse_all("*" + std::to_string(kArrayElementsMax) + "\r\n");
  CHECK(at.last == ParseStatus::kNeedMore);
}

TEST_CASE("an array with kArrayElementsMax elements parses") {
  // Goal: the element limit is inclusive.
  std::string input = "*" + std::to_string(kArrayElementsMax) + "\r\n";
  input.reserve(input.size() + kArrayElementsMax * 6);
  for (std::size_t i = 0; i < kArrayElementsMax; ++i) input += "$0\r\n\r\n";
  const Parsed r = parse_all(input);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0].size() == kArrayElementsMax);
}

TEST_CASE("invalid bulk lengths are refused with Redis's words") {
  // Goal: a length that is not a number, negative, or over kBulkBytesMax.
  const std::string m = "Protocol error: invalid bulk length";
  CHECK(error_of("*1\r\n$abc\r\n") == m);
  CHECK(error_of("*1\r\n$-1\r\n") == m);
  CHECK(error_of("*1\r\n$\r\n") == m);
  CHECK(error_of("*1\r\n$3\rx") == m);
  CHECK(error_of("*1\r\n$" + std::to_string(kBulkBytesMax + 1) + "\r\n") == m);
}

TEST_CASE("a bulk of exactly kBulkBytesMax bytes parses") {
  // Goal: the bulk limit is inclusive, and a large value may arrive in many pieces.
  const std::string value(kBulkBytesMax, 'v');
  const std::string input = request({"SET", "k", value});
  RespParser p;
  Request r;
  for (std::size_t pos = 0; pos < input.size(); pos += 1 << 16) {
    CHECK(p.next(r) == ParseStatus::kNeedMore);
    p.feed(std::string_view(input).substr(pos, 1 << 16));
  }
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  CHECK(r.argv[2].size() == kBulkBytesMax);
  CHECK(r.argv[2] == value);
}

TEST_CASE("an array element not starting with '$' names the byte found") {
  // Goal: Redis's "expected '$', got 'x'", with unprintable bytes shown as a space.
  CHECK(error_of("*2\r\n$3\r\nGET\r\nx\r\n") == "Protocol error: expected '$', got 'x'");
  CHECK(error_of("*1\r\n:1\r\n") == "Protocol error: expected '$', got ':'");
  CHECK(error_of(std::string_view("*1\r\n\0", 5)) == "Protocol error: expected '$', got ' '");
  CHECK(error_of("*1\r\n\r\n") == "Protocol error: expected '$', got ' '");
}

TEST_CASE("a bulk payload must end with CRLF") {
  // Goal: a stream that lost its place is caught at the first payload, not trusted.
  CHECK(error_of("*1\r\n$3\r\nGETxx") == "Protocol error: bulk string not terminated by CRLF");
  CHECK(error_of("*1\r\n$3\r\nGET\n\r") == "Protocol error: bulk string not terminated by CRLF");
}

TEST_CASE("inline lines over kInlineBytesMax are refused, with or without a newline") {
  // Goal: Redis's "too big inline request"; the line limit is inclusive and split-independent.
  const std::string at(kInlineBytesMax, 'a');
  CHECK(parse_all(at + "\n").requests.size() == 1);
  CHECK(parse_all(at).last == ParseStatus::kNeedMore);
  const std::string over(kInlineBytesMax + 1, 'a');
  CHECK(error_of(over) == "Protocol error: too big inline request");
  CHECK(error_of(over + "\r\n") == "Protocol error: too big inline request");
  std::mt19937_64 rng(7);
  const Parsed split = parse_split(over + "\r\n", rng, 1000);
  REQUIRE(split.error.has_value());
  CHECK(split.error->code == RespErrorCode::kTooBigInline);
}

TEST_CASE("count lines over kInlineBytesMax are refused") {
  // Goal: a "*" or "$" header that never ends cannot make the parser buffer without limit.
  CHECK(error_of("*" + std::string(kInlineBytesMax + 1, '1')) ==
        "Protocol error: too big mbulk count string");
  CHECK(error_of("*1\r\n$" + std::string(kInlineBytesMax + 1, '1')) ==
        "Protocol error: too big bulk count string");
  // Just under the limit: still waiting.
  CHECK(parse_all("*" + std::string(kInlineBytesMax - 1, '1')).last == ParseStatus::kNeedMore);
}

TEST_CASE("a request over kRequestBytesMax is refused before its bytes arrive") {
  // Goal: many maximal bulks in one array cannot add up past the request bound; the check
  // fires at the header that would cross it.
  std::string input = "*3\r\n";
  for (int i = 0; i < 2; ++i) {
    input += "$" + std::to_string(kBulkBytesMax) + "\r\n";
    input.append(kBulkBytesMax, 'z');
    input += "\r\n";
  }
  input += "$" + std::to_string(kInlineBytesMax) + "\r\n";
  CHECK(error_of(input) == "Protocol error: request too big");
  // Two maximal bulks and a small one fit.
  input.resize(input.rfind('$'));
  input += "$1\r\nx\r\n";
  const Parsed r = parse_all(input);
  REQUIRE(r.requests.size() == 1);
  CHECK(r.requests[0][2] == "x");
}

TEST_CASE("unauthenticated clients get Redis's tighter array and bulk bounds") {
  // Goal: before AUTH, at most 10 elements and 16 KiB bulks; after, the normal bounds.
  const std::string eleven = "*11\r\n";
  const std::string big = request({"AUTH", std::string(kUnauthenticatedBulkBytesMax + 1, 'p')});
  const std::string fits = request({"AUTH", std::string(kUnauthenticatedBulkBytesMax, 'p')});
  for (const bool unauthenticated : {true, false}) {
    CAPTURE(unauthenticated);
    RespParser p;
    p.set_unauthenticated(unauthenticated);
    p.feed(eleven);
    Request r;
    CHECK(p.next(r) == (unauthenticated ? ParseStatus::kError : ParseStatus::kNeedMore));
    RespParser q;
    q.set_unauthenticated(unauthenticated);
    q.feed(big);
    CHECK(q.next(r) == (unauthenticated ? ParseStatus::kError : ParseStatus::kRequest));
    if (unauthenticated) {
      CHECK(p.error()->code == RespErrorCode::kInvalidMultibulkLength);
      CHECK(q.error()->code == RespErrorCode::kInvalidBulkLength);
    }
  }
  RespParser p;
  p.set_unauthenticated(true);
  p.feed(fits + request({"SET", "k", std::string(100000, 'v')}));
  Request r;
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  p.set_unauthenticated(false);  // The AUTH succeeded.
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  CHECK(r.argv[2].size() == 100000);
}

TEST_CASE("a protocol error is sticky until reset") {
  // Goal: after an error the parser yields nothing more; reset() starts over.
  RespParser p;
  p.feed("*1\r\n$x\r\nPING\r\n");
  Request r;
  CHECK(p.next(r) == ParseStatus::kError);
  p.feed("PING\r\n");
  CHECK(p.next(r) == ParseStatus::kError);
  REQUIRE(p.error().has_value());
  CHECK(p.error()->code == RespErrorCode::kInvalidBulkLength);
  p.reset();
  CHECK_FALSE(p.error().has_value());
  CHECK(p.buffered_bytes() == 0);
  p.feed("PING\r\n");
  REQUIRE(p.next(r) == ParseStatus::kRequest);
  CHECK(r.argv[0] == "PING");
}

TEST_CASE("requests after a pipelined error are not returned") {
  // Goal: the good requests before a bad one are served, nothing after it.
  const Parsed r = parse_all("PING\r\n*1\r\n$4\r\nECHO\r\n*x\r\nPING\r\n");
  CHECK(r.requests == std::vector<Argv>{{"PING"}, {"ECHO"}});
  CHECK(r.last == ParseStatus::kError);
}

TEST_CASE("the buffer is reused: a long pipeline does not grow it") {
  // Goal: consumed bytes are dropped, so steady traffic runs in bounded memory.
  RespParser p;
  Request r;
  const std::string one = request({"SET", "key", std::string(100, 'v')});
  std::size_t capacity_after_warmup = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::span<char> space = p.prepare(one.size());
    std::copy(one.begin(), one.end(), space.begin());
    p.commit(one.size());
    REQUIRE(p.next(r) == ParseStatus::kRequest);
    REQUIRE(p.next(r) == ParseStatus::kNeedMore);
    if (i == 10) capacity_after_warmup = p.prepare(0).size();
  }
  CHECK(p.prepare(0).size() == capacity_after_warmup);
}

TEST_CASE("reply encoders write RESP2 exactly") {
  // Goal: each encoder's bytes, including edge values.
  std::string out;
  append_simple(out, "OK");
  CHECK(out == "+OK\r\n");
  out.clear();
  append_error(out, "ERR bad\r\nthing");
  CHECK(out == "-ERR bad  thing\r\n");
  out.clear();
  append_integer(out, 0);
  append_integer(out, -1);
  append_integer(out, INT64_MIN);
  append_integer(out, INT64_MAX);
  CHECK(out == ":0\r\n:-1\r\n:-9223372036854775808\r\n:9223372036854775807\r\n");
  out.clear();
  append_bulk(out, "");
  append_bulk(out, std::string_view("a\0b", 3));
  CHECK(out == std::string("$0\r\n\r\n$3\r\na\0b\r\n", 15));
  out.clear();
  append_null_bulk(out);
  append_array_header(out, 2);
  append_null_array(out);
  CHECK(out == "$-1\r\n*2\r\n*-1\r\n");
  CHECK(std::string(kReplyOk) == "+OK\r\n");
}

TEST_CASE("reply_length finds the end of one reply") {
  // Goal: splitting concatenated replies (nested arrays, nulls), incomplete and bad input.
  CHECK(reply_length("+OK\r\n:1\r\n") == 5u);
  CHECK(reply_length("-ERR x\r\n") == 8u);
  CHECK(reply_length("$3\r\nabc\r\n+") == 9u);
  CHECK(reply_length("$-1\r\n") == 5u);
  CHECK(reply_length("*-1\r\n") == 5u);
  CHECK(reply_length("*2\r\n*1\r\n:1\r\n$1\r\na\r\n") == 19u);
  CHECK(reply_length("*0\r\n") == 4u);
  CHECK(reply_length("") == 0u);
  CHECK(reply_length("*2\r\n:1\r\n") == 0u);
  CHECK(reply_length("$3\r\nab") == 0u);
  CHECK(reply_length("+OK\r") == 0u);
  CHECK_FALSE(reply_length("?\r\n").has_value());
  CHECK_FALSE(reply_length(":x\r\n").has_value());
  CHECK_FALSE(reply_length("$3\r\nabcd\r\n").has_value());
  CHECK_FALSE(reply_length("+OK\rx").has_value());
  CHECK_FALSE(reply_length("$-2\r\n").has_value());
}

TEST_CASE("owned_argv and argv_views convert both ways") {
  // Goal: a request can outlive the parser's buffer.
  const std::vector<std::string_view> views = {"SET", "k", "v"};
  const std::vector<std::string> owned = owned_argv(views);
  CHECK(owned == Argv{"SET", "k", "v"});
  CHECK(argv_views(owned) == views);
}

}  // namespace
}  // namespace uraft::kv
