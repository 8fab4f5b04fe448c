// pcipass completion bash|zsh: the shells' completion scripts, generated from the command table
// (every command, alias, subcommand and option as CLI11 knows them), so they cannot fall behind
// the commands. Installed by CMake to share/bash-completion/completions/pcipass and
// share/zsh/vendor-completions/_pcipass; device addresses are read from DIR/sys/bus/pci/devices
// by the script, DIR being a --root already typed on the line.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace pcipass::cli {
namespace {

// What the script completes after an option or in a positional place.
enum class ValueKind { kNone, kChoice, kFile, kDirectory, kAddress, kPf, kParent, kUuid, kAny };

const char* value_kind_id(ValueKind k) {
  switch (k) {
    case ValueKind::kNone:
      return "none";
    case ValueKind::kChoice:
      return "choice";
    case ValueKind::kFile:
      return "file";
    case ValueKind::kDirectory:
      return "dir";
    case ValueKind::kAddress:
      return "address";
    case ValueKind::kPf:
      return "pf";
    case ValueKind::kParent:
      return "parent";
    case ValueKind::kUuid:
      return "uuid";
    case ValueKind::kAny:
      return "address-or-uuid";
  }
  return "none";
}

struct OptionSpec {
  std::vector<std::string> names;  // --long and -s forms
  std::string help;
  bool takes_value = false;
  ValueKind kind = ValueKind::kNone;
  std::vector<std::string> choices;
};

struct CommandSpec {
  std::string key;                 // "list", "vf create"
  std::vector<std::string> words;  // the name and its aliases
  std::string help;
  std::vector<OptionSpec> options;
  std::vector<ValueKind> positionals;  // in order
  bool last_repeats = false;           // DEVICE...: the last kind repeats
  std::vector<CommandSpec> subs;
};

// "{a,b,c}" (CLI11's IsMember description) or "a|b|c" (an option text): the values.
std::vector<std::string> split_choices(std::string text) {
  if (text.size() > 2 && text.front() == '{' && text.back() == '}')
    text = text.substr(1, text.size() - 2);
  else if (text.find('|') == std::string::npos || text.find(' ') != std::string::npos)
    return {};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(",|", start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// What the help shows for the value: the option text when set (DIR, ADDRESS...), else CLI11's
// type name.
std::string value_text(CLI::Option* o) {
  return o->get_option_text().empty() ? o->get_type_name() : o->get_option_text();
}

std::vector<std::string> option_choices(CLI::Option* o) {
  try {
    if (auto c = split_choices(o->get_validator()->get_description()); !c.empty()) return c;
  } catch (const CLI::OptionNotFound&) {  // no validator
  }
  return split_choices(value_text(o));
}

ValueKind option_kind(CLI::Option* o, const std::vector<std::string>& choices) {
  if (!choices.empty()) return ValueKind::kChoice;
  std::string type = value_text(o), name = o->get_name();
  if (type == "DIR") return ValueKind::kDirectory;
  if (type.starts_with("ADDRESS")) return ValueKind::kAddress;
  if (type == "FILE" || type == "SOCKET" || name == "--output" || name == "--rom-file" ||
      name == "--romfile")
    return ValueKind::kFile;
  return ValueKind::kNone;
}

ValueKind positional_kind(const std::string& command, const std::string& name) {
  if (name == "DEVICE")
    return command == "xml" || command == "qemu-args" ? ValueKind::kAny : ValueKind::kAddress;
  if (name == "PF") return ValueKind::kPf;
  if (name == "PARENT") return ValueKind::kParent;
  if (name == "UUID") return ValueKind::kUuid;
  return ValueKind::kNone;
}

CommandSpec describe(CLI::App& app, const std::string& key) {
  CommandSpec spec;
  spec.key = key;
  spec.words.push_back(app.get_name());
  for (const auto& a : app.get_aliases()) spec.words.push_back(a);
  spec.help = app.get_description();
  for (CLI::Option* o : app.get_options()) {
    if (o->get_group().empty()) continue;  // hidden (test-only options)
    if (o->get_positional() && !o->nonpositional()) {
      spec.positionals.push_back(positional_kind(key, o->get_name(true)));
      spec.last_repeats = o->get_expected_max() > 1;
      continue;
    }
    OptionSpec opt;
    for (const auto& l : o->get_lnames()) opt.names.push_back("--" + l);
    for (const auto& s : o->get_snames()) opt.names.push_back("-" + s);
    opt.help = o->get_description();
    opt.takes_value = o->get_type_size_min() > 0 && o->get_expected_min() > 0;
    if (opt.takes_value) {
      opt.choices = option_choices(o);
      opt.kind = option_kind(o, opt.choices);
    }
    spec.options.push_back(std::move(opt));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    spec.subs.push_back(
        describe(*sub, key.empty() ? sub->get_name() : key + " " + sub->get_name()));
    // vf's and mdev's subcommands fall through to their command's options (--json): offered
    // after them too.
    if (key.empty()) continue;
    for (const auto& o : spec.options)
      if (o.names.front() != "--help") spec.subs.back().options.push_back(o);
  }
  return spec;
}

// Every command as CLI11 builds it, hidden ones left out.
CommandSpec describe_all() {
  CLI::App app{"pcipass", "pcipass"};
  Globals g;
  add_globals(app, g);
  Args args;  // the options point into it while `app` lives
  for (const auto& c : commands())
    if (!hidden_command(c)) add_command(app, c, args, g.json);
  return describe(app, "");
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// Single-quoted for both shells: ' becomes '\''.
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void each(const CommandSpec& c, const std::function<void(const CommandSpec&)>& f) {
  f(c);
  for (const auto& s : c.subs) each(s, f);
}

// The data both scripts read: functions printing what each command path offers.
std::string data_functions(const CommandSpec& root) {
  std::string opts, values, choices, kinds, subs, positionals;
  each(root, [&](const CommandSpec& c) {
    std::string pat = sq(c.key);             // the scripts map aliases to the name first
    std::vector<std::string> names, valued;  // CLI11's -h,--help is among the options
    for (const auto& o : c.options) {
      names.insert(names.end(), o.names.begin(), o.names.end());
      if (!o.takes_value) continue;
      valued.insert(valued.end(), o.names.begin(), o.names.end());
      for (const auto& n : o.names) {
        kinds += fmt::format("    {}) echo {} ;;\n", sq(c.key + " " + n), value_kind_id(o.kind));
        if (!o.choices.empty())
          choices += fmt::format("    {}) echo {} ;;\n", sq(c.key + " " + n), sq(join(o.choices)));
      }
    }
    opts += fmt::format("    {}) echo {} ;;\n", pat, sq(join(names)));
    values += fmt::format("    {}) echo {} ;;\n", pat, sq(join(valued)));
    std::vector<std::string> sub_words;
    for (const auto& s : c.subs) sub_words.insert(sub_words.end(), s.words.begin(), s.words.end());
    if (!sub_words.empty()) subs += fmt::format("    {}) echo {} ;;\n", pat, sq(join(sub_words)));
    std::vector<std::string> pos;
    for (ValueKind k : c.positionals) pos.push_back(value_kind_id(k));
    if (!pos.empty())
      positionals +=
          fmt::format("    {}) echo {}{} ;;\n", pat, sq(join(pos)), c.last_repeats ? " +" : "");
  });
  // Option kinds are keyed by the canonical command path; aliases map to it first.
  std::string canon;
  for (const auto& top : root.subs)
    for (size_t i = 1; i < top.words.size(); ++i)
      canon += fmt::format("    {}) echo {} ;;\n", sq(top.words[i]), sq(top.key));
  return fmt::format(
      "# What each command path (\"\", \"list\", \"vf create\") offers: generated from the "
      "command table.\n"
      "_pcipass_options() {{\n  case \"$1\" in\n{}  esac\n}}\n"
      "_pcipass_value_options() {{\n  case \"$1\" in\n{}  esac\n}}\n"
      "_pcipass_subcommands() {{\n  case \"$1\" in\n{}  esac\n}}\n"
      "# Kinds of the positional arguments, in order; a trailing + repeats the last.\n"
      "_pcipass_positionals() {{\n  case \"$1\" in\n{}  esac\n}}\n"
      "_pcipass_canonical() {{\n  case \"$1\" in\n{}    *) echo \"$1\" ;;\n  esac\n}}\n"
      "# \"PATH OPTION\": what its value is (file, dir, choice, address...), and the choices.\n"
      "_pcipass_value_kind() {{\n  case \"$1\" in\n{}  esac\n}}\n"
      "_pcipass_choices() {{\n  case \"$1\" in\n{}  esac\n}}\n",
      opts, values, subs, positionals, canon, kinds, choices);
}

// Reading the host (both shells): addresses, SR-IOV PFs, mdev parents and mdev UUIDs below the
// root typed with --root.
constexpr const char* kSysfsFunctions = R"SH(_pcipass_sysfs() {
  # $1: what (address, pf, parent, uuid, address-or-uuid); $2: the --root typed, if any
  local root=${2%/} d
  [ -n "${ZSH_VERSION-}" ] && setopt localoptions nullglob
  case $root in "~"/*) root=$HOME/${root#"~"/} ;; esac
  case $1 in
    address|address-or-uuid|pf|parent)
      for d in "$root"/sys/bus/pci/devices/*; do
        [ -e "$d" ] || [ -L "$d" ] || continue
        [ "$1" = pf ] && [ ! -e "$d/sriov_totalvfs" ] && continue
        [ "$1" = parent ] && [ ! -e "$d/mdev_supported_types" ] && continue
        printf '%s\n' "${d##*/}"
      done ;;
  esac
  case $1 in
    uuid|address-or-uuid)
      for d in "$root"/sys/bus/mdev/devices/*; do
        [ -e "$d" ] || [ -L "$d" ] || continue
        printf '%s\n' "${d##*/}"
      done ;;
  esac
}
# The kind of the positional argument number $2 (from 0) of command path $1.
_pcipass_positional_kind() {
  local want=$2 last=none i=0 k
  for k in $(_pcipass_positionals "$1"); do
    if [ "$k" = + ]; then
      [ "$want" -ge "$i" ] && { echo "$last"; return; }
      continue
    fi
    [ "$i" -eq "$want" ] && { echo "$k"; return; }
    last=$k
    i=$((i + 1))
  done
  echo none
}
)SH";

constexpr const char* kBashMain =
    R"SH(# The line as pcipass sees it: bash splits words at ':' (COMP_WORDBREAKS), which cuts
# 0000:01:00.0 in five; the pieces are joined again here.
_pcipass_words() {
  local i w
  _pcipass_w=()
  _pcipass_cword=0
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    w=${COMP_WORDS[i]}
    if ((${#_pcipass_w[@]} > 0)) && [[ $COMP_WORDBREAKS == *:* && -n $w ]] &&
       [[ $w == : || ${_pcipass_w[-1]} == *: ]]; then
      _pcipass_w[-1]+=$w
    else
      _pcipass_w+=("$w")
    fi
    ((i == COMP_CWORD)) && _pcipass_cword=$((${#_pcipass_w[@]} - 1))
  done
}

_pcipass() {
  local _pcipass_w _pcipass_cword
  _pcipass_words
  local cur=${_pcipass_w[_pcipass_cword]} prev= root= cmd= sub= key= npos=0 i w kind
  ((_pcipass_cword > 0)) && prev=${_pcipass_w[_pcipass_cword - 1]}
  for ((i = 1; i < _pcipass_cword; i++)); do
    w=${_pcipass_w[i]}
    case $w in
      --root) root=${_pcipass_w[i + 1]}; ((i++)); continue ;;
      --root=*) root=${w#--root=}; continue ;;
      --*=*) continue ;;
      -*)
        [[ " $(_pcipass_value_options "$key") " == *" $w "* ]] && ((i++))
        continue ;;
    esac
    if [[ -z $cmd ]]; then
      cmd=$(_pcipass_canonical "$w"); key=$cmd
    elif [[ -z $sub && -n $(_pcipass_subcommands "$cmd") ]]; then
      sub=$w; key="$cmd $sub"
    else
      ((npos++))
    fi
  done
  COMPREPLY=()
  if [[ $prev == -* && " $(_pcipass_value_options "$key") " == *" $prev "* ]]; then
    kind=$(_pcipass_value_kind "$key $prev")
    case $kind in
      choice) COMPREPLY=($(compgen -W "$(_pcipass_choices "$key $prev")" -- "$cur")) ;;
      file) COMPREPLY=($(compgen -f -- "$cur")) ;;
      dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
      address) COMPREPLY=($(compgen -W "$(_pcipass_sysfs address "$root")" -- "$cur")) ;;
    esac
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_pcipass_options "$key")" -- "$cur"))
  elif [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$(_pcipass_subcommands '')" -- "$cur"))
  elif [[ -z $sub && -n $(_pcipass_subcommands "$cmd") ]]; then
    COMPREPLY=($(compgen -W "$(_pcipass_subcommands "$cmd")" -- "$cur"))
  else
    kind=$(_pcipass_positional_kind "$key" "$npos")
    [[ $kind != none ]] &&
      COMPREPLY=($(compgen -W "$(_pcipass_sysfs "$kind" "$root")" -- "$cur"))
  fi
  # bash replaces only the part of the word after its last ':'
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local head=${cur%"${cur##*:}"}
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$head"}; done
  fi
}
complete -F _pcipass pcipass
)SH";

constexpr const char* kZshMain = R"SH(_pcipass() {
  local root= cmd= sub= key= npos=0 i w kind prev cur=${words[CURRENT]}
  local -a reply_words
  prev=${words[CURRENT-1]}
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    case $w in
      --root) root=${words[i+1]}; ((i++)); continue ;;
      --root=*) root=${w#--root=}; continue ;;
      --*=*) continue ;;
      -*)
        [[ " $(_pcipass_value_options "$key") " == *" $w "* ]] && ((i++))
        continue ;;
    esac
    if [[ -z $cmd ]]; then
      cmd=$(_pcipass_canonical "$w"); key=$cmd
    elif [[ -z $sub && -n $(_pcipass_subcommands "$cmd") ]]; then
      sub=$w; key="$cmd $sub"
    else
      ((npos++))
    fi
  done
  if [[ $prev == -* && " $(_pcipass_value_options "$key") " == *" $prev "* ]]; then
    kind=$(_pcipass_value_kind "$key $prev")
    case $kind in
      choice) reply_words=(${(s: :)"$(_pcipass_choices "$key $prev")"}); compadd -a reply_words ;;
      file) _files ;;
      dir) _files -/ ;;
      address) reply_words=(${(f)"$(_pcipass_sysfs address "$root")"}); compadd -a reply_words ;;
    esac
  elif [[ $cur == -* ]]; then
    reply_words=(${(s: :)"$(_pcipass_options "$key")"}); compadd -a reply_words
  elif [[ -z $cmd ]]; then
    local -a described
    described=(${(f)"$(_pcipass_described)"})
    _describe -t commands 'pcipass command' described
  elif [[ -z $sub && -n $(_pcipass_subcommands "$cmd") ]]; then
    reply_words=(${(s: :)"$(_pcipass_subcommands "$cmd")"}); compadd -a reply_words
  else
    kind=$(_pcipass_positional_kind "$key" "$npos")
    if [[ $kind != none ]]; then
      reply_words=(${(f)"$(_pcipass_sysfs "$kind" "$root")"}); compadd -a reply_words
    fi
  fi
}
_pcipass "$@"
)SH";

// zsh's command list with each command's line of help (name:help for _describe).
std::string described(const CommandSpec& root) {
  std::string lines;
  for (const auto& c : root.subs)
    for (const auto& w : c.words) {
      std::string help = c.help;
      for (char& ch : help)
        if (ch == '\n') ch = ' ';
      lines += w + ":" + help + "\n";
    }
  return "_pcipass_described() {\n  printf '%s\\n' \\\n" + [&] {
    std::string args;
    size_t start = 0;
    while (start < lines.size()) {
      size_t end = lines.find('\n', start);
      args += "    " + sq(lines.substr(start, end - start)) + " \\\n";
      start = end + 1;
    }
    return args;
  }() + "    \n}\n";
}

}  // namespace

void setup_completion(CLI::App& app, Args& a) {
  app.add_option("SHELL", a.completion_shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
}

int run_completion(Context& ctx, const Args& a) {
  CommandSpec root = describe_all();
  if (a.completion_shell == "bash") {
    ctx.out << "# bash completion for pcipass: generated by `pcipass completion bash`.\n"
            << data_functions(root) << kSysfsFunctions << kBashMain;
    return kExitOk;
  }
  ctx.out << "#compdef pcipass\n# zsh completion for pcipass: generated by `pcipass completion "
             "zsh`.\n"
          << data_functions(root) << described(root) << kSysfsFunctions << kZshMain;
  return kExitOk;
}

}  // namespace pcipass::cli
