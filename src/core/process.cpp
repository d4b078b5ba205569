#include "process.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace shmr::process {
namespace {

struct StatFields {
  bool found = false;
  char state = '?';
  uint64_t start_ticks = 0;
};

StatFields read_stat(int64_t pid) {
  StatFields out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return out;
  // The command name (field 2) may contain spaces and ')', so fields are
  // counted from the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  int index = 2;
  while (rest >> field) {
    ++index;
    if (index == 3) out.state = field.empty() ? '?' : field[0];
    if (index == 22) {
      out.start_ticks = std::strtoull(field.c_str(), nullptr, 10);
      out.found = true;
      break;
    }
  }
  return out;
}

}  // namespace

Identity current() {
  static const Identity self = [] {
    Identity id;
    id.pid = static_cast<int64_t>(::getpid());
    id.start_ticks = read_stat(id.pid).start_ticks;
    return id;
  }();
  // A forked child has a new PID; recompute rather than report the parent.
  if (self.pid == static_cast<int64_t>(::getpid())) return self;
  Identity id;
  id.pid = static_cast<int64_t>(::getpid());
  id.start_ticks = read_stat(id.pid).start_ticks;
  return id;
}

bool is_alive(const Identity& who) {
  if (who.pid <= 0) return false;
  StatFields st = read_stat(who.pid);
  if (!st.found) return false;
  if (st.state == 'Z' || st.state == 'X') return false;
  if (who.start_ticks != 0 && st.start_ticks != who.start_ticks) return false;
  return true;
}

}  // namespace shmr::process
