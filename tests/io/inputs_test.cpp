// Input expansion: files kept as given, directories sorted (and recursive), "-" from a stream,
// duplicates removed.
#include "cnnvis/io/inputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cnnvis {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

class InputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnnvis_inputs_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string touch(const std::string& rel) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "x";
    return p.string();
  }
  std::string d(const std::string& rel = "") const { return rel.empty() ? dir_.string() : (dir_ / rel).string(); }

  fs::path dir_;
};

TEST(HasImageExtension, KnownExtensionsCaseInsensitive) {
  for (const char* p : {"a.jpg", "a.JPG", "a.jpeg", "a.png", "a.bmp", "a.tif", "a.TIFF", "a.webp", "a.pgm", "a.ppm",
                        "a.pbm", "a.pnm", "dir.d/a.Png"}) {
    EXPECT_TRUE(has_image_extension(p)) << p;
  }
  for (const char* p : {"a.txt", "a", "jpg", ".jpg", "a.jpg.txt", "a.gif", "a.json", "a.", "dir.png/a"}) {
    EXPECT_FALSE(has_image_extension(p)) << p;
  }
}

TEST_F(InputsTest, DirectoryIsSortedAndFiltered) {
  touch("c.png");
  touch("a.jpg");
  touch("B.JPEG");
  touch("notes.txt");
  touch("sub/deep.png");
  touch(".hidden.png");
  std::istringstream in;
  const Strings got = collect_inputs({d()}, false, in);
  EXPECT_EQ(got, (Strings{d("B.JPEG"), d("a.jpg"), d("c.png")}));
}

TEST_F(InputsTest, RecursiveDirectory) {
  touch("z.png");
  touch("a/2.png");
  touch("a/1.jpg");
  touch("a/b/0.bmp");
  touch("a/b/readme.md");
  touch(".git/objects/x.png");
  std::istringstream in;
  const Strings got = collect_inputs({d()}, true, in);
  EXPECT_EQ(got, (Strings{d("a/1.jpg"), d("a/2.png"), d("a/b/0.bmp"), d("z.png")}));
}

TEST_F(InputsTest, DirectoryWithOnlySubdirectoriesYieldsNothingWithoutRecursive) {
  touch("sub/a.png");
  std::istringstream in;
  EXPECT_TRUE(collect_inputs({d()}, false, in).empty());
  EXPECT_EQ(collect_inputs({d()}, true, in), (Strings{d("sub/a.png")}));
}

TEST_F(InputsTest, FilesKeptAsGivenEvenWhenMissingOrNotImages) {
  const std::string a = touch("a.jpg");
  const std::string txt = touch("list.txt");
  std::istringstream in;
  const Strings got = collect_inputs({a, d("missing.png"), txt, "relative/nope.jpg"}, false, in);
  EXPECT_EQ(got, (Strings{a, d("missing.png"), txt, "relative/nope.jpg"}));
}

TEST_F(InputsTest, DashReadsPathsFromTheStream) {
  const std::string a = touch("a.jpg");
  std::istringstream in("first.jpg\n\n   \nsecond.png\r\n" + a + "\nwith space.jpg\nlast.jpg");
  const Strings got = collect_inputs({"-"}, false, in);
  EXPECT_EQ(got, (Strings{"first.jpg", "second.png", a, "with space.jpg", "last.jpg"}));
}

TEST_F(InputsTest, OrderIsKeptAcrossArgumentsAndDuplicatesAppearOnce) {
  touch("dir/x.png");
  touch("dir/y.png");
  const std::string a = touch("a.jpg");
  std::istringstream in(a + "\nfrom_stdin.jpg\n");
  const Strings got = collect_inputs({a, d("dir"), "-", d("dir/x.png"), d("./a.jpg"), d("dir") + "/"}, false, in);
  EXPECT_EQ(got, (Strings{a, d("dir/x.png"), d("dir/y.png"), "from_stdin.jpg"}));
}

TEST_F(InputsTest, EmptyArguments) {
  std::istringstream in;
  EXPECT_TRUE(collect_inputs({}, true, in).empty());
  touch("empty/readme.txt");
  EXPECT_TRUE(collect_inputs({d("empty")}, true, in).empty());
}

}  // namespace
}  // namespace cnnvis
