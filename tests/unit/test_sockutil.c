/* test_sockutil.c - a unix socket's mode and group change, and its file is
 * removed, on the file the relay bound only, never on whatever has taken its
 * path since. Every file is in a fresh temporary directory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockutil.h"
#include "testutil.h"

static char dir[64];
static char sock_path[128], other_path[128], victim_path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_sockutil.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/relay.unix", dir);
	snprintf(other_path, sizeof(other_path), "%s/other.unix", dir);
	snprintf(victim_path, sizeof(victim_path), "%s/victim", dir);
}

static void teardown(void)
{
	unlink(sock_path);
	unlink(other_path);
	unlink(victim_path);
	rmdir(dir);
}

static int bound_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void make_victim(void)
{
	int fd = open(victim_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chmod(victim_path, 0600), 0);
}

START_TEST(own_socket_changes)
{
	struct sock_file f;
	char err[256];
	int fd = bound_at(sock_path);

	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), 0);
	ck_assert_int_eq(sock_file_chmod(sock_path, &f, 0620, (gid_t)-1, err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of(sock_path), 0620);
	ck_assert_int_eq(sock_file_chmod(sock_path, &f, 0646, getegid(), err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of(sock_path), 0646);
	close(fd);
}
END_TEST

START_TEST(symlink_swapped_in_later_is_left_alone)
{
	struct sock_file f;
	char err[256];
	int fd = bound_at(sock_path);

	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), 0);
	make_victim();
	ck_assert_int_eq(unlink(sock_path), 0);
	ck_assert_int_eq(symlink(victim_path, sock_path), 0);
	ck_assert_int_eq(sock_file_chmod(sock_path, &f, 0646, (gid_t)-1, err, sizeof(err)), -ESTALE);
	ck_assert_msg(strstr(err, "no longer the socket the relay bound"), "%s", err);
	ck_assert_uint_eq(mode_of(victim_path), 0600);
	close(fd);
}
END_TEST

START_TEST(another_socket_at_the_path_is_left_alone)
{
	struct sock_file f;
	char err[256];
	int fd = bound_at(sock_path);

	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), 0);
	ck_assert_int_eq(unlink(sock_path), 0);
	int other = bound_at(sock_path);
	ck_assert_int_eq(chmod(sock_path, 0600), 0);
	ck_assert_int_eq(sock_file_chmod(sock_path, &f, 0666, (gid_t)-1, err, sizeof(err)), -ESTALE);
	ck_assert_uint_eq(mode_of(sock_path), 0600);
	close(other);
	close(fd);
}
END_TEST

/* What bind() just made is a socket of ours with one link; what a swap
 * right after bind() could leave is none of those. */
START_TEST(claim_refuses_what_bind_cannot_have_made)
{
	struct sock_file f;
	char err[256];

	make_victim();
	ck_assert_int_eq(symlink(victim_path, sock_path), 0);
	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), -EPERM);
	ck_assert_uint_eq(mode_of(victim_path), 0600);
	ck_assert_int_eq(unlink(sock_path), 0);

	ck_assert_int_eq(sock_file_claim(victim_path, &f, err, sizeof(err)), -EPERM);

	int fd = bound_at(other_path);
	ck_assert_int_eq(link(other_path, sock_path), 0); /* someone else's socket, linked in */
	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), -EPERM);
	ck_assert_msg(strstr(err, "is not the socket the relay bound"), "%s", err);
	close(fd);
}
END_TEST

/* sock_listen() binds, claims and applies the mode in one go. */
START_TEST(listen_applies_the_mode_to_its_own_file)
{
	struct url u;
	struct sock_file f;
	struct sock_opts o = { 4096, 0604, (gid_t)-1 };
	char text[160], err[256];
	struct stat st;

	snprintf(text, sizeof(text), "unix://%s", sock_path);
	ck_assert_int_eq(url_parse(text, true, &u, err, sizeof(err)), 0);
	int fd = sock_listen(&u, &o, &f, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(lstat(sock_path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0604);
	ck_assert_uint_eq(st.st_ino, f.ino);
	ck_assert_uint_eq(st.st_dev, f.dev);
	close(fd);
}
END_TEST

START_TEST(remove_takes_only_its_own_file)
{
	struct sock_file f;
	char err[256];
	int fd = bound_at(sock_path), other;
	struct stat st;

	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), 0);
	/* Someone else's socket, then a regular file, took the path. */
	ck_assert_int_eq(unlink(sock_path), 0);
	other = bound_at(sock_path);
	sock_file_remove(sock_path, &f);
	ck_assert_int_eq(lstat(sock_path, &st), 0);
	close(other);
	ck_assert_int_eq(unlink(sock_path), 0);
	make_victim();
	ck_assert_int_eq(rename(victim_path, sock_path), 0);
	sock_file_remove(sock_path, &f);
	ck_assert_int_eq(lstat(sock_path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(unlink(sock_path), 0);
	close(fd);

	/* Its own socket goes. */
	fd = bound_at(sock_path);
	ck_assert_int_eq(sock_file_claim(sock_path, &f, err, sizeof(err)), 0);
	sock_file_remove(sock_path, &f);
	ck_assert_int_eq(lstat(sock_path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	close(fd);
}
END_TEST

START_TEST(prepare_refuses_a_live_socket_and_a_file)
{
	char err[256];
	int fd = bound_at(sock_path);

	ck_assert_int_eq(sock_path_prepare(sock_path, SOCK_DGRAM, err, sizeof(err)), -EADDRINUSE);
	close(fd); /* the file stays, stale */
	ck_assert_int_eq(sock_path_prepare(sock_path, SOCK_DGRAM, err, sizeof(err)), 0);
	ck_assert_int_eq(access(sock_path, F_OK), -1);
	make_victim();
	ck_assert_int_eq(sock_path_prepare(victim_path, SOCK_DGRAM, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(access(victim_path, F_OK), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("sockutil");
	TCase *tc = tcase_create("sockutil");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, own_socket_changes);
	tcase_add_test(tc, symlink_swapped_in_later_is_left_alone);
	tcase_add_test(tc, another_socket_at_the_path_is_left_alone);
	tcase_add_test(tc, claim_refuses_what_bind_cannot_have_made);
	tcase_add_test(tc, listen_applies_the_mode_to_its_own_file);
	tcase_add_test(tc, remove_takes_only_its_own_file);
	tcase_add_test(tc, prepare_refuses_a_live_socket_and_a_file);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
