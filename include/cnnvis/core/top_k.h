// The k best items of a stream in bounded memory (a min-heap of size k), for "dataset examples per unit".
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace cnnvis {

// Keeps the k items with the highest score; among equal scores the one seen first (smaller sequence
// number) ranks higher, so the result equals a stable sort of everything by descending score, cut at k.
template <typename Item>
class StreamingTopK {
 public:
  explicit StreamingTopK(std::size_t k) : k_(k) { heap_.reserve(k); }

  // Returns true when the item was kept (for now).
  bool push(double score, const Item& item) {
    const Entry entry{score, sequence_++, item};
    if (k_ == 0) return false;
    if (heap_.size() < k_) {
      heap_.push_back(entry);
      std::push_heap(heap_.begin(), heap_.end(), worse_first);
      return true;
    }
    if (!better(entry, heap_.front())) return false;
    std::pop_heap(heap_.begin(), heap_.end(), worse_first);
    heap_.back() = entry;
    std::push_heap(heap_.begin(), heap_.end(), worse_first);
    return true;
  }

  // Would an item with this score be kept now? (Lets callers skip building items that would lose.)
  bool would_keep(double score) const { return heap_.size() < k_ || score > heap_.front().score; }

  struct Entry {
    double score;
    std::uint64_t sequence;
    Item item;
  };
  // Best first.
  std::vector<Entry> sorted() const {
    std::vector<Entry> out = heap_;
    std::sort(out.begin(), out.end(), better);
    return out;
  }
  std::size_t size() const { return heap_.size(); }

 private:
  static bool better(const Entry& a, const Entry& b) {
    return a.score > b.score || (a.score == b.score && a.sequence < b.sequence);
  }
  // Heap order: the worst entry at the front.
  static bool worse_first(const Entry& a, const Entry& b) { return better(a, b); }

  std::size_t k_;
  std::uint64_t sequence_ = 0;
  std::vector<Entry> heap_;
};

}  // namespace cnnvis
