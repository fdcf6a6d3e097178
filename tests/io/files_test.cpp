#include "cada/io/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "io_test_util.h"

namespace cada::io {
namespace {

namespace fs = std::filesystem;
using testing::read_raw;
using testing::write_raw;

class FilesTest : public testing::TempDirTest {
 protected:
  size_t entries(const std::string& d) const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(d), fs::directory_iterator()));
  }
};

TEST_F(FilesTest, AtomicWriteCreatesParentsAndLeavesNoTempFile) {
  const std::string p = path("a/b/c.txt");
  atomic_write_file(p, "hello");
  EXPECT_EQ(read_file(p), "hello");
  atomic_write_file(p, std::string("bin\0ary", 7));
  EXPECT_EQ(read_file(p), std::string("bin\0ary", 7));
  EXPECT_EQ(entries(path("a/b")), 1u);
  atomic_write_file(p, "");
  EXPECT_EQ(read_file(p), "");
}

TEST_F(FilesTest, UncommittedWriterKeepsOldContent) {
  const std::string p = path("f.txt");
  atomic_write_file(p, "old");
  {
    AtomicFileWriter w(p);
    w.write("new content that is never committed");
    EXPECT_TRUE(file_exists(w.temp_path()));
    EXPECT_EQ(read_file(p), "old");  // nothing visible before commit
    // destroyed here without commit(), as when an exception unwinds
  }
  EXPECT_EQ(read_file(p), "old");
  EXPECT_EQ(entries(dir().string()), 1u);
}

TEST_F(FilesTest, FailedRenameKeepsTargetAndRemovesTemp) {
  // Renaming a file over a non-empty directory fails even for root.
  fs::create_directories(path("target/inner"));
  EXPECT_CADA_ERROR(atomic_write_file(path("target"), "x"), path("target"), "renaming");
  EXPECT_TRUE(fs::is_directory(path("target/inner")));
  EXPECT_EQ(entries(dir().string()), 1u);
}

TEST_F(FilesTest, WriteIntoReadOnlyDirFails) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  fs::create_directories(path("ro"));
  atomic_write_file(path("ro/f.txt"), "old");
  ::chmod(path("ro").c_str(), 0555);
  EXPECT_CADA_ERROR(atomic_write_file(path("ro/f.txt"), "new"), path("ro/f.txt"));
  ::chmod(path("ro").c_str(), 0755);
  EXPECT_EQ(read_file(path("ro/f.txt")), "old");
}

TEST_F(FilesTest, WriterMoveAndDoubleCommit) {
  const std::string p = path("m.bin");
  AtomicFileWriter a(p);
  a.write("abc", 3);
  AtomicFileWriter b(std::move(a));
  b.write("def");
  EXPECT_EQ(b.bytes_written(), 6u);
  b.commit();
  EXPECT_EQ(read_file(p), "abcdef");
  EXPECT_CADA_ERROR(b.commit(), p, "already committed");
  EXPECT_CADA_ERROR(b.write("x"), p);
}

TEST_F(FilesTest, ReadFileErrors) {
  EXPECT_CADA_ERROR(read_file(path("missing.txt")), path("missing.txt"), "Cannot open");
  EXPECT_CADA_ERROR(read_file(dir().string()), dir().string(), "directory");
}

TEST_F(FilesTest, MakeDirsAndHelpers) {
  make_dirs(path("x/y/z"));
  EXPECT_TRUE(is_directory(path("x/y/z")));
  make_dirs(path("x/y/z"));  // idempotent
  make_dirs(path("x/y/z/"));
  write_raw(path("x/file"), "1");
  EXPECT_CADA_ERROR(make_dirs(path("x/file/sub")), path("x/file"), "not a directory");
  EXPECT_TRUE(file_exists(path("x/file")));
  EXPECT_FALSE(file_exists(path("x/none")));
  EXPECT_FALSE(is_directory(path("x/file")));
  EXPECT_EQ(list_dir(path("x")), (std::vector<std::string>{"file", "y"}));
  remove_file(path("x/file"));
  remove_file(path("x/file"));  // absent: no error
  EXPECT_FALSE(file_exists(path("x/file")));
  EXPECT_CADA_ERROR(list_dir(path("nope")), path("nope"));
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "/b"), "a/b");
  EXPECT_EQ(join_path("", "b"), "b");
}

TEST_F(FilesTest, FifoIsWrittenInPlaceNotReplaced) {
  // /dev/null, /dev/stdout and pipes are written in place: a rename over them would replace the
  // device. Shown on a FIFO the test owns.
  const std::string fifo = path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = read_file(fifo); });
  atomic_write_file(fifo, "through the pipe\n");
  reader.join();
  EXPECT_EQ(got, "through the pipe\n");
  struct stat st;
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  atomic_write_file("/dev/null", "discarded");  // no temporary file next to it, no error
}

}  // namespace
}  // namespace cada::io
