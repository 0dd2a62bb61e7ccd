// The command table of uraftd and the first step of serving a request: look the command up,
// check its arity, authentication and syntax, answer the commands the node answers by itself
// (PING, ECHO, HELLO, COMMAND, CONFIG GET, CLIENT, ...), and tell the server where the rest go:
// reads to the store after a linearizable read point, writes through the Raft log. Replies and
// errors use Redis's words, so Redis clients and tools behave as they would against Redis.
// Pure: no I/O, no clock; what a local command needs from the server comes in as arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace uraft::kv {

enum class CommandKind : std::uint8_t {
  kLocal,  // Answered by the node that received it, from per-connection state.
  kRead,   // Answered from the store once it reflects every write committed before the request.
  kWrite,  // Proposed through the Raft log; answered by Store::apply once committed.
};

enum class CommandId : std::uint8_t {
  // kLocal
  kPing, kEcho, kQuit, kAuth, kHello, kCommand, kConfig, kClient, kSelect, kInfo, kRaftTransfer,
  // kRead
  kGet, kExists, kMget, kStrlen, kDbsize,
  // kWrite
  kSet, kDel, kAppend, kIncr, kIncrby, kDecr, kDecrby, kMset, kFlushall,
};

struct CommandSpec {
  std::string_view name;  // Lower case, as Redis names commands in errors.
  // Redis's convention: n > 0 takes exactly n arguments counting the name; n < 0 at least -n.
  int arity;
  CommandKind kind;
  CommandId id;
};

// Every command, in CommandId order.
[[nodiscard]] std::span<const CommandSpec> command_table() noexcept;
// The command named `name` in any letter case, or nullptr.
[[nodiscard]] const CommandSpec* find_command(std::string_view name) noexcept;
[[nodiscard]] const CommandSpec& command_spec(CommandId id) noexcept;
// Whether argc arguments (the name included) satisfy spec's arity.
[[nodiscard]] bool arity_ok(const CommandSpec& spec, std::size_t argc) noexcept;

// The Redis version whose replies uraftd follows, as HELLO (and INFO's redis_version) report
// it: clients choose features by it, and everything uraftd answers behaves as in this version.
inline constexpr std::string_view kRedisVersion = "7.0.0";

// What one client connection carries between requests. The server creates one per
// connection (id unique per node, addresses as "ip:port") and keeps it for route_command.
struct ClientSession {
  std::uint64_t id = 0;
  std::string addr;   // The client's address.
  std::string laddr;  // The address it connected to.
  std::string name;   // CLIENT SETNAME; empty: none.
  std::string lib_name, lib_ver;  // CLIENT SETINFO LIB-NAME / LIB-VER.
  bool authenticated = false;     // Meaningful only when a password is required.
};

// What local commands need to know of the node.
struct LocalSettings {
  std::string_view requirepass;  // Empty: no password, every client is authenticated.
};

enum class Route : std::uint8_t {
  kReplied,       // `out` holds the whole reply: a local command's, or an error.
  kRepliedClose,  // QUIT: send `out`, then close the connection.
  kInfo,          // INFO: build the text (InfoBuilder, info_wants) and reply with a bulk.
  kTransfer,      // RAFT.TRANSFER [node]: the node hands its leadership over, then replies.
  kRead,          // Serve with Store::read at a linearizable read point.
  kWrite,         // Propose through Raft (argv in a batch); Store::apply gives the reply.
};

struct Routed {
  Route route;
  const CommandSpec* spec;  // nullptr for an unknown command (then route is kReplied).
};

// The first step for every request: looks argv[0] up, checks arity, authentication (NOAUTH
// unless AUTH, HELLO or QUIT) and, for writes, the syntax (validate_write), and answers local
// commands. Only kReplied / kRepliedClose append to `out`. Precondition: argv is not empty.
[[nodiscard]] Routed route_command(std::span<const std::string_view> argv,
                                   ClientSession& session, const LocalSettings& settings,
                                   std::string& out);

// The store-independent checks of a write command (spec->kind == kWrite, arity already
// checked): SET's options, INCRBY's increment, MSET's pairs, FLUSHALL's mode. Returns true
// if it may be proposed; otherwise appends the error reply to `out`. Store::apply runs the
// same checks, so an entry that skipped them still gets the same error.
[[nodiscard]] bool validate_write(const CommandSpec& spec, std::span<const std::string_view> argv,
                                  std::string& out);

// Error replies in Redis's words (each appended as a RESP error).
// "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
void append_unknown_command(std::string& out, std::span<const std::string_view> argv);
// "ERR wrong number of arguments for 'get' command"
void append_wrong_arity(std::string& out, std::string_view command_name);
inline constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kErrDecrementOverflow = "ERR decrement would overflow";
inline constexpr std::string_view kErrSyntax = "ERR syntax error";
inline constexpr std::string_view kErrNoAuth = "NOAUTH Authentication required.";
// SET EX / PX / EXAT / PXAT: a key's expiry would have to be decided by a clock, and every
// replica must reach the same state from the log alone, so uraftd keeps no expiry at all.
// (KEEPTTL is accepted: with no expiry anywhere there is nothing to keep.)
inline constexpr std::string_view kErrNoExpiry =
    "ERR expiry is not supported: uraftd keys never expire (a replicated log has no clock)";
// A string grown by APPEND beyond kBulkBytesMax.
inline constexpr std::string_view kErrStringTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

// Parses a whole decimal int64 as Redis does (string2ll: optional '-', no '+', no spaces, no
// leading zeros, no overflow).
[[nodiscard]] bool parse_int64(std::string_view s, std::int64_t& value) noexcept;

// INFO's text, in Redis's format: "# Server\r\nkey:value\r\n...", a blank line between
// sections. The server fills it; the reply is append_bulk(out, builder.text()).
class InfoBuilder {
 public:
  // Starts a section, titled as given ("Server", "Clients", "Raft", "Stats", "Keyspace").
  void section(std::string_view title);
  void field(std::string_view key, std::string_view value);
  void field(std::string_view key, std::int64_t value);
  void field(std::string_view key, std::uint64_t value);
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
};

// Whether "INFO [section ...]" asks for the section named `section` (lower case, e.g.
// "raft"). No argument, "default", "all" and "everything" ask for every section; names are
// matched in any letter case.
[[nodiscard]] bool info_wants(std::span<const std::string_view> argv, std::string_view section);

// ASCII lower case of s.
[[nodiscard]] std::string to_lower(std::string_view s);
// Whether a and b are equal ignoring ASCII letter case.
[[nodiscard]] bool equals_ignore_case(std::string_view a, std::string_view b) noexcept;

}  // namespace uraft::kv
