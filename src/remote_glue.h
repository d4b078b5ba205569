// Process-wide state of remote mode in the R glue (view_state.cpp and the
// .Call entry points of api_remote.cpp).
#pragma once

#include <optional>
#include <string>

namespace shmr::glue::remote {

// > 0 while a pool call over daemons on other hosts serializes its tasks.
int& scope_depth();

// Within one scope, every view of a region is sent with the same origin: a
// data frame's columns ask R for it once, not once per column. Entering or
// leaving a scope forgets them (a nested scope may serve from another
// server).
std::optional<std::string> origin_in_scope(const std::string& key);
void remember_origin_in_scope(const std::string& key, const std::string& origin);
void forget_origins_in_scope();

// Set once this worker (a mirai daemon, a parallel worker) has received an
// object from another host, or a pool told it that its caller is on another
// host: its own shares then travel by value, since their names mean nothing
// there.
bool& peer_is_remote();

// True in remote mode (the option, or a pool call's scope) and once
// peer_is_remote(): a shared object's name alone may then mean nothing
// where it goes. (A list travels by value then; its elements' views carry
// their origins.)
bool names_may_not_travel();

// This host's identity for the current shm directory.
std::string local_host();

// The origin (FORMAT.md 4, the "origin" field) an object of region `name` created
// by `pid` at `created_ms` arrived with, so the same origin travels on when
// the object is sent again.
std::string origin_key(const std::string& name, int64_t pid, int64_t created_ms);
void record_origin(const std::string& key, const std::string& origin);
std::optional<std::string> recorded_origin(const std::string& key);
// False until an object from another host arrived (the usual, local case).
bool has_recorded_origins();

}  // namespace shmr::glue::remote
