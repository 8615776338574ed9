// File helpers shared by the native engine's readers and writers: whole-file reads with clear
// errors, atomic writes (temp file in the same folder, fsync, rename), directory creation and
// listing. It is not a format parser (json.h, safetensors.h, tokens.h do that).
#pragma once

#include <string>
#include <vector>

namespace strata::io {

/** Reads a whole file; throws std::runtime_error naming the path when it cannot. */
std::string read_file(const std::string& path);

/**
 * Writes `data` to `path` atomically: writes PATH.tmp-PID in the same folder, fsyncs it, renames
 * it over `path` and fsyncs the folder. Readers see either the old or the new file, never a part.
 */
void write_file_atomic(const std::string& path, const std::string& data);

/** Appends one line (a trailing newline is added) and flushes; used for events.jsonl and log.txt. */
void append_line(const std::string& path, const std::string& line);

/** mkdir -p; throws naming the path on failure. */
void make_dirs(const std::string& path);

bool path_exists(const std::string& path);

/** Removes a file or a directory tree; missing paths are ignored. */
void remove_tree(const std::string& path);

/** Names (not paths) of the entries of a directory, sorted; empty when it does not exist. */
std::vector<std::string> list_dir(const std::string& path);

/** "a/b" + "c" -> "a/b/c". */
std::string join_path(const std::string& a, const std::string& b);

/** File name extension including the dot, lower-cased ("" when none). */
std::string extension(const std::string& path);

}  // namespace strata::io
