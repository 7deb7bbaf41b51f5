// IDX files (the MNIST / Fashion-MNIST format), plain or gzipped, read with validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnnvis {

struct IdxArray {
  std::vector<std::int64_t> dims;     // e.g. {60000, 28, 28}
  std::vector<std::uint8_t> values;  // unsigned bytes, C order
};

// Reads an IDX file of unsigned bytes (type 0x08). A name ending in ".gz" is gunzipped. Validates the
// magic (two zero bytes, type 0x08, 1..4 dims), dimensions (non-zero, product within 1e9) and that the
// data is exactly the declared size (truncated or trailing data is an error). Throws InputError
// "<path>: <problem>".
IdxArray read_idx(const std::string& path);
IdxArray parse_idx(const std::uint8_t* data, std::size_t size, const std::string& name);
// Gunzips (at most 1 GiB) and parses; what read_idx does for a ".gz" name.
IdxArray parse_idx_gzip(const std::uint8_t* data, std::size_t size, const std::string& name);

// Default location of Debian's dataset-fashion-mnist package.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnistSplit {
  IdxArray images;  // {N, 28, 28}
  IdxArray labels;  // {N}
};

// split: "train" or "test". Checks that counts agree, images are 28x28 and labels are < 10.
FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split);

// T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace cnnvis
