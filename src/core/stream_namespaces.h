// The namespaces an R serialize() stream refers to, read from its bytes
// without unserializing it. R replaces a namespace it cannot load by
// .GlobalEnv while it unserializes, and by default says nothing: a reader
// asks first whether each of them loads here (FORMAT.md section 4, how a
// list travels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shmr {

// The package names of the namespace references in `size` bytes of a
// version 2 or 3 XDR stream (serialize()'s default), each once, in order of
// first appearance. Any byte sequence laid out as such a reference counts,
// so a vector's bytes may add a name the stream never refers to; a stream
// in another encoding (ASCII, native binary) yields nothing and
// `recognized` false.
std::vector<std::string> namespaces_in_stream(const uint8_t* data, size_t size, bool& recognized);

}  // namespace shmr
