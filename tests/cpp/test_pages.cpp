// Detecting pages a process has copied on write in a private file mapping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "pages.h"
#include "region_file.h"
#include "test_util.h"

using namespace shmr_test;

TEST(Pages, ReadPagesAreSharedWrittenPagesArePrivate) {
  TempDir dir;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t size = 16 * page;
  std::string path = dir.path() + "/file";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  shmr::FileDescriptor guard(fd);
  ASSERT_EQ(::posix_fallocate(fd, 0, static_cast<off_t>(size)), 0);
  auto map = shmr::MemoryMap::private_copy_on_write(fd, size);
  auto* bytes = static_cast<unsigned char*>(map.data());

  EXPECT_FALSE(shmr::pages::has_private_copies(bytes, size)) << "untouched";
  volatile unsigned char sink = 0;
  for (uint64_t i = 0; i < size; i += page) sink = sink + bytes[i];
  EXPECT_FALSE(shmr::pages::has_private_copies(bytes, size)) << "only read";

  bytes[5 * page + 7] = 1;
  EXPECT_TRUE(shmr::pages::has_private_copies(bytes, size));
  EXPECT_TRUE(shmr::pages::has_private_copies(bytes + 5 * page, 1));
  EXPECT_FALSE(shmr::pages::has_private_copies(bytes, 5 * page)) << "pages before the write";
  EXPECT_FALSE(shmr::pages::has_private_copies(bytes + 6 * page, 10 * page)) << "pages after";
  EXPECT_FALSE(shmr::pages::has_private_copies(bytes, 0));
}
