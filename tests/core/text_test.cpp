// String helpers: split/join round trips, ASCII lowering, safe file stems and message lists.
#include "cnnvis/core/text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cnnvis {
namespace {

using Strings = std::vector<std::string>;

TEST(Text, SplitKeepsEmptyFields) {
  EXPECT_EQ(split("a,b,c", ','), (Strings{"a", "b", "c"}));
  EXPECT_EQ(split("a,,b", ','), (Strings{"a", "", "b"}));
  EXPECT_EQ(split(",a,", ','), (Strings{"", "a", ""}));
  EXPECT_EQ(split("", ','), (Strings{""}));
  EXPECT_EQ(split("abc", ','), (Strings{"abc"}));
}

TEST(Text, JoinIsInverseOfSplit) {
  for (const char* s : {"a,b,c", "a,,b", ",", "", "x"}) EXPECT_EQ(join(split(s, ','), ","), s);
  EXPECT_EQ(join({}, ", "), "");
  EXPECT_EQ(join({"one"}, ", "), "one");
  EXPECT_EQ(join({"a", "b"}, " -> "), "a -> b");
}

TEST(Text, ToLowerIsAsciiOnly) {
  EXPECT_EQ(to_lower("VGG16 Features.29"), "vgg16 features.29");
  EXPECT_EQ(to_lower("\xC3\x89t\xC3\xA9"), "\xC3\x89t\xC3\xA9");  // UTF-8 bytes untouched
}

TEST(Text, SafeFileStemKeepsSafeCharacters) {
  EXPECT_EQ(safe_file_stem("dog-01_final.v2"), "dog-01_final.v2");
  EXPECT_EQ(safe_file_stem("my photo (1)"), "my_photo__1_");
}

TEST(Text, SafeFileStemNeverLeavesTheDirectory) {
  for (const char* hostile : {"../../etc/passwd", "a/b", "a\\b", "/abs", "..", ".", "", "\0x"}) {
    const std::string s = safe_file_stem(hostile);
    EXPECT_FALSE(s.empty()) << hostile;
    EXPECT_NE(s, ".");
    EXPECT_NE(s, "..");
    EXPECT_EQ(s.find('/'), std::string::npos) << s;
    EXPECT_EQ(s.find('\\'), std::string::npos) << s;
  }
  EXPECT_EQ(safe_file_stem("../../etc/passwd"), ".._.._etc_passwd");
  EXPECT_EQ(safe_file_stem(""), "_");
  EXPECT_EQ(safe_file_stem("."), "_");
  EXPECT_EQ(safe_file_stem(".."), "__");
  EXPECT_EQ(safe_file_stem(std::string("a\0b", 3)), "a_b");
}

TEST(Text, SafeFileStemMapsOneNonAsciiCharacterToOneUnderscore) {
  EXPECT_EQ(safe_file_stem("caf\xC3\xA9"), "caf_");                // é
  EXPECT_EQ(safe_file_stem("\xE7\x8A\xAC.jpg"), "_.jpg");           // 犬
  EXPECT_EQ(safe_file_stem("\xF0\x9F\x90\xB6"), "_");               // emoji
}

TEST(Text, SafeFileStemIsBounded) {
  const std::string s = safe_file_stem(std::string(1000, 'x'));
  EXPECT_GT(s.size(), 50u);
  EXPECT_LE(s.size(), 200u);  // leaves room for suffixes under the 255-byte name limit
}

TEST(Text, ListForMessage) {
  EXPECT_EQ(list_for_message({}), "");
  EXPECT_EQ(list_for_message({"a"}), "a");
  EXPECT_EQ(list_for_message({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(list_for_message({"a", "b", "c"}, 3), "a, b, c");
  EXPECT_EQ(list_for_message({"a", "b", "c", "d", "e"}, 2), "a, b, ... (3 more)");
  EXPECT_EQ(list_for_message({"a", "b"}, 0), "... (2 more)");
  Strings many;
  for (int i = 0; i < 25; ++i) many.push_back("l" + std::to_string(i));
  const std::string m = list_for_message(many);
  EXPECT_NE(m.find("l19, ... (5 more)"), std::string::npos) << m;
  EXPECT_EQ(m.find("l20"), std::string::npos) << m;
}

TEST(Text, CsvFieldQuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain/path.png"), "plain/path.png");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(csv_field(""), "");
}

}  // namespace
}  // namespace cnnvis
