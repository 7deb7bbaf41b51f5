// Checks of a TorchScript file's zip archive made before LibTorch reads it. LibTorch trusts what the archive
// states: a pickle record's lengths and memo indices (one altered byte of data.pkl made it allocate 23 GB),
// a tensor record's size (a record shorter than the storage data.pkl describes is read past its end) and a
// tensor's view of its storage (an offset moved past the storage is read past its end too).
// Torch-free (own zip reader, zlib for deflated records), so that the checks can be fuzzed without
// torch::jit::load (tests/fuzz/fuzz_torchscript_archive.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cnnvis {

// Throws WeightsError "<name>: not a TorchScript model (record R: problem)", one line, when
//  - a pickle record (*.pkl, *_pkl) states a length or memo index that its own size cannot hold, pops an
//    empty stack or closes a mark it never opened;
//  - a storage that data.pkl or constants.pkl references (its persistent id names the key, dtype and
//    element count) has no record data/<key> (constants/<key>) or one shorter than numel x element size;
//  - a tensor's view of its storage (_rebuild_tensor_v2's offset, sizes and strides) reaches past the
//    storage's element count, or has a negative or overflowing extent;
//  - a record the checks read lies beyond the end of the file, or its zip entry is inconsistent.
// Returns silently for what is not a zip archive (no end-of-central-directory record): jit::load says so.
// Record names are given as LibTorch names them, without the archive's top folder ("data/0").
void check_torchscript_archive(const std::uint8_t* data, std::size_t size, const std::string& name);

// The same on the file at `path`, reading only the zip directory, the pickle records and the local headers
// of the records they reference. A file that cannot be opened is left to jit::load.
void check_torchscript_archive(const std::string& path);

}  // namespace cnnvis
