#include "kv/commands.h"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include "core/assert.h"
#include "kv/resp.h"

namespace uraft::kv {

namespace {

constexpr std::array<CommandSpec, 25> kTable = {{
    {"ping", -1, CommandKind::kLocal, CommandId::kPing},
    {"echo", 2, CommandKind::kLocal, CommandId::kEcho},
    {"quit", -1, CommandKind::kLocal, CommandId::kQuit},
    {"auth", -2, CommandKind::kLocal, CommandId::kAuth},
    {"hello", -1, CommandKind::kLocal, CommandId::kHello},
    {"command", -1, CommandKind::kLocal, CommandId::kCommand},
    {"config", -2, CommandKind::kLocal, CommandId::kConfig},
    {"client", -2, CommandKind::kLocal, CommandId::kClient},
    {"select", 2, CommandKind::kLocal, CommandId::kSelect},
    {"info", -1, CommandKind::kLocal, CommandId::kInfo},
    {"raft.transfer", -1, CommandKind::kLocal, CommandId::kRaftTransfer},
    {"get", 2, CommandKind::kRead, CommandId::kGet},
    {"exists", -2, CommandKind::kRead, CommandId::kExists},
    {"mget", -2, CommandKind::kRead, CommandId::kMget},
    {"strlen", 2, CommandKind::kRead, CommandId::kStrlen},
    {"dbsize", 1, CommandKind::kRead, CommandId::kDbsize},
    {"set", -3, CommandKind::kWrite, CommandId::kSet},
    {"del", -2, CommandKind::kWrite, CommandId::kDel},
    {"append", 3, CommandKind::kWrite, CommandId::kAppend},
    {"incr", 2, CommandKind::kWrite, CommandId::kIncr},
    {"incrby", 3, CommandKind::kWrite, CommandId::kIncrby},
    {"decr", 2, CommandKind::kWrite, CommandId::kDecr},
    {"decrby", 3, CommandKind::kWrite, CommandId::kDecrby},
    {"mset", -3, CommandKind::kWrite, CommandId::kMset},
    {"flushall", -1, CommandKind::kWrite, CommandId::kFlushall},
}};

constexpr bool table_in_id_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<std::size_t>(kTable[i].id) != i) return false;
  }
  return true;
}
static_assert(table_in_id_order());
static_assert(static_cast<std::size_t>(CommandId::kFlushall) + 1 == kTable.size());

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Redis's COMMAND INFO key positions: first key, last key (-1: the last argument), step.
struct KeySpec {
  int first, last, step;
};
KeySpec key_spec(CommandId id) noexcept {
  switch (id) {
    case CommandId::kGet: case CommandId::kStrlen: case CommandId::kSet: case CommandId::kAppend:
    case CommandId::kIncr: case CommandId::kIncrby: case CommandId::kDecr: case CommandId::kDecrby:
      return {1, 1, 1};
    case CommandId::kExists: case CommandId::kMget: case CommandId::kDel:
      return {1, -1, 1};
    case CommandId::kMset:
      return {1, -1, 2};
    default:
      return {0, 0, 0};
  }
}

// One COMMAND INFO entry in Redis 7's shape: name, arity, flags, first key, last key, step,
// ACL categories, tips, key specs, subcommands (the last four empty).
void append_command_info(std::string& out, const CommandSpec& spec) {
  append_array_header(out, 10);
  append_bulk(out, spec.name);
  append_integer(out, spec.arity);
  switch (spec.kind) {
    case CommandKind::kLocal:
      append_array_header(out, 2);
      append_simple(out, "loading");
      append_simple(out, "stale");
      break;
    case CommandKind::kRead:
      append_array_header(out, 2);
      append_simple(out, "readonly");
      append_simple(out, "fast");
      break;
    case CommandKind::kWrite:
      append_array_header(out, 1);
      append_simple(out, "write");
      break;
  }
  const KeySpec k = key_spec(spec.id);
  append_integer(out, k.first);
  append_integer(out, k.last);
  append_integer(out, k.step);
  for (int i = 0; i < 4; ++i) append_array_header(out, 0);
}

void append_help(std::string& out, std::span<const std::string_view> lines) {
  append_array_header(out, lines.size());
  for (const std::string_view l : lines) append_simple(out, l);
}

// "ERR unknown subcommand 'x'. Try CONFIG HELP."
void append_unknown_subcommand(std::string& out, std::string_view command, std::string_view sub) {
  std::string m = "ERR unknown subcommand '";
  m += sub.substr(0, std::min(sub.find('\0'), std::size_t{128}));
  m += "'. Try ";
  for (const char c : command) m += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  m += " HELP.";
  append_error(out, m);
}

// Redis's stringmatch with nocase, for * ? and literal bytes (CONFIG GET patterns).
bool glob_match(std::string_view pattern, std::string_view s) {
  std::size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(s[i]))) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// The parameters CONFIG GET reports. Tools read a few on connect (redis-benchmark asks for
// "save" and "appendonly"); none can be changed.
struct ConfigParam {
  std::string_view name, value;
};
constexpr std::array<ConfigParam, 7> kConfigParams = {{
    {"save", ""},
    {"appendonly", "no"},
    {"databases", "1"},
    {"maxmemory", "0"},
    {"timeout", "0"},
    {"proto-max-bulk-len", "16777216"},
    {"cluster-enabled", "no"},
}};
static_assert(kBulkBytesMax == 16777216, "keep proto-max-bulk-len in step");

// Compares in time independent of where the first difference is (passwords).
bool equals_constant_time(std::string_view a, std::string_view b) noexcept {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^
            static_cast<unsigned char>(b.empty() ? 0 : b[i % b.size()]);
  }
  return diff == 0;
}

constexpr std::string_view kErrWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

// AUTH's check: the only user is "default".
bool password_ok(const LocalSettings& settings, std::string_view user, std::string_view pass) {
  if (user != "default") return false;
  if (settings.requirepass.empty()) return true;
  return equals_constant_time(pass, settings.requirepass);
}

void run_auth(std::span<const std::string_view> argv, ClientSession& session,
              const LocalSettings& settings, std::string& out) {
  if (argv.size() > 3) {
    append_error(out, kErrSyntax);
    return;
  }
  if (argv.size() == 2 && settings.requirepass.empty()) {
    append_error(out,
                 "ERR AUTH <password> called without any password configured for the default "
                 "user. Are you sure your configuration is correct?");
    return;
  }
  const std::string_view user = argv.size() == 3 ? argv[1] : std::string_view("default");
  if (!password_ok(settings, user, argv.back())) {
    append_error(out, kErrWrongPass);
    return;
  }
  session.authenticated = true;
  out += kReplyOk;
}

bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '!' && c <= '~'; });
}

void run_hello(std::span<const std::string_view> argv, ClientSession& session,
               const LocalSettings& settings, std::string& out) {
  if (argv.size() >= 2) {
    std::int64_t version = 0;
    if (!parse_int64(argv[1], version)) {
      append_error(out, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (version != 2) {
      // RESP3 is not spoken; clients fall back to RESP2 on this error.
      append_error(out, "NOPROTO unsupported protocol version");
      return;
    }
  }
  std::string_view user, pass, name;
  bool has_auth = false, has_name = false;
  for (std::size_t i = 2; i < argv.size(); ++i) {
    const std::size_t left = argv.size() - i - 1;
    if (equals_ignore_case(argv[i], "auth") && left >= 2) {
      has_auth = true;
      user = argv[i + 1];
      pass = argv[i + 2];
      i += 2;
    } else if (equals_ignore_case(argv[i], "setname") && left >= 1) {
      has_name = true;
      name = argv[i + 1];
      i += 1;
    } else {
      std::string m = "ERR Syntax error in HELLO option '";
      m += argv[i].substr(0, 128);
      m += '\'';
      append_error(out, m);
      return;
    }
  }
  if (has_auth) {
    if (!password_ok(settings, user, pass)) {
      append_error(out, kErrWrongPass);
      return;
    }
    session.authenticated = true;
  }
  if (!settings.requirepass.empty() && !session.authenticated) {
    append_error(out,
                 "NOAUTH HELLO must be called with the client already authenticated, otherwise "
                 "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
                 "client and select the RESP protocol version at the same time");
    return;
  }
  if (has_name) {
    if (!valid_client_name(name)) {
      append_error(out, "ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    session.name = name;
  }
  // RESP2 has no map: a flat array of field, value pairs.
  append_array_header(out, 14);
  append_bulk(out, "server");
  append_bulk(out, "redis");
  append_bulk(out, "version");
  append_bulk(out, kRedisVersion);
  append_bulk(out, "proto");
  append_integer(out, 2);
  append_bulk(out, "id");
  append_integer(out, static_cast<std::int64_t>(session.id));
  append_bulk(out, "mode");
  append_bulk(out, "standalone");
  append_bulk(out, "role");
  append_bulk(out, "master");
  append_bulk(out, "modules");
  append_array_header(out, 0);
}

void run_command(std::span<const std::string_view> argv, std::string& out) {
  if (argv.size() == 1) {
    append_array_header(out, kTable.size());
    for (const CommandSpec& s : kTable) append_command_info(out, s);
    return;
  }
  const std::string_view sub = argv[1];
  if (equals_ignore_case(sub, "count") && argv.size() == 2) {
    append_integer(out, static_cast<std::int64_t>(kTable.size()));
  } else if (equals_ignore_case(sub, "info")) {
    if (argv.size() == 2) {
      append_array_header(out, kTable.size());
      for (const CommandSpec& s : kTable) append_command_info(out, s);
      return;
    }
    append_array_header(out, argv.size() - 2);
    for (std::size_t i = 2; i < argv.size(); ++i) {
      const CommandSpec* spec = find_command(argv[i]);
      if (spec == nullptr) {
        append_null_bulk(out);
      } else {
        append_command_info(out, *spec);
      }
    }
  } else if (equals_ignore_case(sub, "docs")) {
    // A valid answer with no documentation: redis-cli then keeps its built-in help.
    append_array_header(out, 0);
  } else if (equals_ignore_case(sub, "list") && argv.size() == 2) {
    append_array_header(out, kTable.size());
    for (const CommandSpec& s : kTable) append_bulk(out, s.name);
  } else if (equals_ignore_case(sub, "help") && argv.size() == 2) {
    static constexpr std::array<std::string_view, 5> kHelp = {
        "COMMAND <subcommand> [<arg> ...]. Subcommands are:",
        "(no subcommand)", "    Return details about all commands.",
        "COUNT | INFO [<command-name> ...] | DOCS [<command-name> ...] | LIST",
        "    Return the count, details, documentation (none) or names of commands."};
    append_help(out, kHelp);
  } else if (equals_ignore_case(sub, "count") || equals_ignore_case(sub, "list") ||
             equals_ignore_case(sub, "help")) {
    append_wrong_arity(out, "command|" + to_lower(sub));
  } else {
    append_unknown_subcommand(out, "command", sub);
  }
}

void run_config(std::span<const std::string_view> argv, std::string& out) {
  const std::string_view sub = argv[1];
  if (equals_ignore_case(sub, "get")) {
    if (argv.size() < 3) {
      append_wrong_arity(out, "config|get");
      return;
    }
    // (parameter, name to reply): a pattern without glob characters is looked up and echoed
    // as typed, a glob reports each matching parameter's own name (as Redis 7 does).
    std::vector<std::pair<const ConfigParam*, std::string_view>> found;
    auto add = [&found](const ConfigParam* p, std::string_view name) {
      for (const auto& f : found) {
        if (f.first == p) return;
      }
      found.emplace_back(p, name);
    };
    for (std::size_t i = 2; i < argv.size(); ++i) {
      const bool glob = argv[i].find_first_of("[*?") != std::string_view::npos;
      for (const ConfigParam& p : kConfigParams) {
        if (glob ? glob_match(argv[i], p.name) : equals_ignore_case(argv[i], p.name)) {
          add(&p, glob ? p.name : argv[i]);
        }
      }
    }
    append_array_header(out, 2 * found.size());
    for (const auto& [p, name] : found) {
      append_bulk(out, name);
      append_bulk(out, p->value);
    }
  } else if (equals_ignore_case(sub, "set")) {
    append_error(out, "ERR CONFIG SET is not supported: uraftd is configured on its command line");
  } else if (equals_ignore_case(sub, "resetstat") && argv.size() == 2) {
    out += kReplyOk;
  } else if (equals_ignore_case(sub, "help") && argv.size() == 2) {
    static constexpr std::array<std::string_view, 5> kHelp = {
        "CONFIG <subcommand> [<arg> ...]. Subcommands are:",
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "RESETSTAT", "    Accepted; uraftd keeps no resettable statistics here."};
    append_help(out, kHelp);
  } else {
    append_unknown_subcommand(out, "config", sub);
  }
}

void run_client(std::span<const std::string_view> argv, ClientSession& session, std::string& out) {
  const std::string_view sub = argv[1];
  if (equals_ignore_case(sub, "id") && argv.size() == 2) {
    append_integer(out, static_cast<std::int64_t>(session.id));
  } else if (equals_ignore_case(sub, "getname") && argv.size() == 2) {
    if (session.name.empty()) {
      append_null_bulk(out);
    } else {
      append_bulk(out, session.name);
    }
  } else if (equals_ignore_case(sub, "setname") && argv.size() == 3) {
    if (!valid_client_name(argv[2])) {
      append_error(out, "ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    session.name = argv[2];
    out += kReplyOk;
  } else if (equals_ignore_case(sub, "setinfo") && argv.size() == 4) {
    if (!valid_client_name(argv[3])) {
      std::string m = "ERR ";
      m += to_lower(argv[2]);
      m += " cannot contain spaces, newlines or special characters.";
      append_error(out, m);
    } else if (equals_ignore_case(argv[2], "lib-name")) {
      session.lib_name = argv[3];
      out += kReplyOk;
    } else if (equals_ignore_case(argv[2], "lib-ver")) {
      session.lib_ver = argv[3];
      out += kReplyOk;
    } else {
      std::string m = "ERR Unrecognized option '";
      m += argv[2].substr(0, 128);
      m += '\'';
      append_error(out, m);
    }
  } else if (equals_ignore_case(sub, "info") && argv.size() == 2) {
    std::string line = "id=" + std::to_string(session.id) + " addr=" + session.addr +
                       " laddr=" + session.laddr + " name=" + session.name +
                       " db=0 flags=N cmd=client|info user=default resp=2 lib-name=" +
                       session.lib_name + " lib-ver=" + session.lib_ver + "\n";
    append_bulk(out, line);
  } else if (equals_ignore_case(sub, "help") && argv.size() == 2) {
    static constexpr std::array<std::string_view, 9> kHelp = {
        "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "SETNAME <name> | SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Name the current connection, or record the client library."};
    append_help(out, kHelp);
  } else if (equals_ignore_case(sub, "id") || equals_ignore_case(sub, "getname") ||
             equals_ignore_case(sub, "setname") || equals_ignore_case(sub, "setinfo") ||
             equals_ignore_case(sub, "info") || equals_ignore_case(sub, "help")) {
    append_wrong_arity(out, "client|" + to_lower(sub));
  } else {
    append_unknown_subcommand(out, "client", sub);
  }
}

// Local commands other than AUTH and HELLO, which also see the settings.
Route run_local(const CommandSpec& spec, std::span<const std::string_view> argv,
                ClientSession& session, const LocalSettings& settings, std::string& out) {
  switch (spec.id) {
    case CommandId::kPing:
      if (argv.size() > 2) {
        append_wrong_arity(out, spec.name);
      } else if (argv.size() == 2) {
        append_bulk(out, argv[1]);
      } else {
        append_simple(out, "PONG");
      }
      return Route::kReplied;
    case CommandId::kEcho:
      append_bulk(out, argv[1]);
      return Route::kReplied;
    case CommandId::kQuit:
      out += kReplyOk;
      return Route::kRepliedClose;
    case CommandId::kAuth:
      run_auth(argv, session, settings, out);
      return Route::kReplied;
    case CommandId::kHello:
      run_hello(argv, session, settings, out);
      return Route::kReplied;
    case CommandId::kCommand:
      run_command(argv, out);
      return Route::kReplied;
    case CommandId::kConfig:
      run_config(argv, out);
      return Route::kReplied;
    case CommandId::kClient:
      run_client(argv, session, out);
      return Route::kReplied;
    case CommandId::kSelect: {
      std::int64_t db = 0;
      if (!parse_int64(argv[1], db)) {
        append_error(out, kErrNotInteger);
      } else if (db != 0) {
        append_error(out, "ERR DB index is out of range");
      } else {
        out += kReplyOk;
      }
      return Route::kReplied;
    }
    case CommandId::kInfo:
      return Route::kInfo;
    case CommandId::kRaftTransfer:
      if (argv.size() > 2) {
        append_error(out, kErrSyntax);
        return Route::kReplied;
      }
      return Route::kTransfer;
    default:
      break;
  }
  URAFT_ASSERT(spec.kind == CommandKind::kLocal);
  return Route::kReplied;
}

bool is_expiry_option(std::string_view o) {
  return equals_ignore_case(o, "ex") || equals_ignore_case(o, "px") ||
         equals_ignore_case(o, "exat") || equals_ignore_case(o, "pxat");
}

// SET's options, checked as Redis checks them (each at most once, NX and XX exclusive, one
// expiry form); a well-formed expiry is then refused with kErrNoExpiry.
bool validate_set(std::span<const std::string_view> argv, std::string& out) {
  bool nx = false, xx = false, get = false, keepttl = false, expiry = false;
  for (std::size_t i = 3; i < argv.size(); ++i) {
    const std::string_view o = argv[i];
    if (equals_ignore_case(o, "nx") && !xx) {
      nx = true;
    } else if (equals_ignore_case(o, "xx") && !nx) {
      xx = true;
    } else if (equals_ignore_case(o, "get")) {
      get = true;
    } else if (equals_ignore_case(o, "keepttl") && !expiry) {
      keepttl = true;
    } else if (is_expiry_option(o) && !keepttl && !expiry && i + 1 < argv.size()) {
      expiry = true;
      ++i;
    } else {
      append_error(out, kErrSyntax);
      return false;
    }
  }
  (void)get;
  if (expiry) {
    append_error(out, kErrNoExpiry);
    return false;
  }
  return true;
}

}  // namespace

std::span<const CommandSpec> command_table() noexcept { return kTable; }

const CommandSpec* find_command(std::string_view name) noexcept {
  for (const CommandSpec& s : kTable) {
    if (equals_ignore_case(s.name, name)) return &s;
  }
  return nullptr;
}

const CommandSpec& command_spec(CommandId id) noexcept {
  const auto i = static_cast<std::size_t>(id);
  URAFT_ASSERT(i < kTable.size());
  return kTable[i];
}

bool arity_ok(const CommandSpec& spec, std::size_t argc) noexcept {
  if (spec.arity >= 0) return argc == static_cast<std::size_t>(spec.arity);
  return argc >= static_cast<std::size_t>(-spec.arity);
}

Routed route_command(std::span<const std::string_view> argv, ClientSession& session,
                     const LocalSettings& settings, std::string& out) {
  URAFT_ASSERT(!argv.empty());
  const CommandSpec* spec = find_command(argv[0]);
  if (spec == nullptr) {
    append_unknown_command(out, argv);
    return {Route::kReplied, nullptr};
  }
  if (!arity_ok(*spec, argv.size())) {
    append_wrong_arity(out, spec->name);
    return {Route::kReplied, spec};
  }
  if (!settings.requirepass.empty() && !session.authenticated && spec->id != CommandId::kAuth &&
      spec->id != CommandId::kHello && spec->id != CommandId::kQuit) {
    append_error(out, kErrNoAuth);
    return {Route::kReplied, spec};
  }
  switch (spec->kind) {
    case CommandKind::kLocal:
      return {run_local(*spec, argv, session, settings, out), spec};
    case CommandKind::kRead:
      return {Route::kRead, spec};
    case CommandKind::kWrite:
      if (!validate_write(*spec, argv, out)) return {Route::kReplied, spec};
      return {Route::kWrite, spec};
  }
  return {Route::kReplied, spec};
}

bool validate_write(const CommandSpec& spec, std::span<const std::string_view> argv,
                    std::string& out) {
  URAFT_ASSERT(spec.kind == CommandKind::kWrite);
  URAFT_ASSERT(arity_ok(spec, argv.size()));
  std::int64_t n = 0;
  switch (spec.id) {
    case CommandId::kSet:
      return validate_set(argv, out);
    case CommandId::kIncrby:
      if (!parse_int64(argv[2], n)) {
        append_error(out, kErrNotInteger);
        return false;
      }
      return true;
    case CommandId::kDecrby:
      if (!parse_int64(argv[2], n)) {
        append_error(out, kErrNotInteger);
        return false;
      }
      if (n == std::numeric_limits<std::int64_t>::min()) {
        append_error(out, kErrDecrementOverflow);
        return false;
      }
      return true;
    case CommandId::kMset:
      if (argv.size() % 2 == 0) {
        append_wrong_arity(out, spec.name);
        return false;
      }
      return true;
    case CommandId::kFlushall:
      if (argv.size() > 2 ||
          (argv.size() == 2 && !equals_ignore_case(argv[1], "sync") &&
           !equals_ignore_case(argv[1], "async"))) {
        append_error(out, kErrSyntax);
        return false;
      }
      return true;
    default:
      return true;
  }
}

void append_unknown_command(std::string& out, std::span<const std::string_view> argv) {
  // As Redis formats it: the name and each argument printed as C strings (up to a NUL), at
  // most 128 bytes of name and about 128 of arguments.
  auto c_string = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  std::string args;
  for (std::size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
    const std::size_t room = 128 - args.size();  // Redis's "'%.*s' " with 128 - sdslen(args).
    args += '\'';
    args += c_string(argv[i]).substr(0, room);
    args += "' ";
  }
  std::string m = "ERR unknown command '";
  m += c_string(argv[0]).substr(0, 128);
  m += "', with args beginning with: ";
  m += args;
  append_error(out, m);
}

void append_wrong_arity(std::string& out, std::string_view command_name) {
  std::string m = "ERR wrong number of arguments for '";
  m += command_name;
  m += "' command";
  append_error(out, m);
}

bool parse_int64(std::string_view s, std::int64_t& value) noexcept {
  // string2ll: no empty string, no '+', no leading zeros (but "0"), no "-0".
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    value = 0;
    return true;
  }
  const bool negative = s[0] == '-';
  const std::string_view digits = negative ? s.substr(1) : s;
  if (digits.empty() || digits[0] < '1' || digits[0] > '9') return false;
  std::uint64_t v = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (v > max + 1) return false;
    value = static_cast<std::int64_t>(0 - v);
  } else {
    if (v > max) return false;
    value = static_cast<std::int64_t>(v);
  }
  return true;
}

void InfoBuilder::section(std::string_view title) {
  if (!text_.empty()) text_ += "\r\n";
  text_ += "# ";
  text_ += title;
  text_ += "\r\n";
}

void InfoBuilder::field(std::string_view key, std::string_view value) {
  text_ += key;
  text_ += ':';
  text_ += value;
  text_ += "\r\n";
}

void InfoBuilder::field(std::string_view key, std::int64_t value) {
  field(key, std::string_view(std::to_string(value)));
}

void InfoBuilder::field(std::string_view key, std::uint64_t value) {
  field(key, std::string_view(std::to_string(value)));
}

bool info_wants(std::span<const std::string_view> argv, std::string_view section) {
  if (argv.size() <= 1) return true;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    if (equals_ignore_case(argv[i], "default") || equals_ignore_case(argv[i], "all") ||
        equals_ignore_case(argv[i], "everything") || equals_ignore_case(argv[i], section)) {
      return true;
    }
  }
  return false;
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace uraft::kv
