package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Unmount is `kfs unmount`.
func Unmount() *Command {
	c := &Command{Name: "unmount", Alias: "umount", Args: "[--lazy] MOUNTPOINT", Summary: "unmount (also: fusermount3 -u MOUNTPOINT)",
		Examples: []string{"kfs unmount /kfs_public"}}
	c.Run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.Flags(stdout)
		lazy := fs.Bool("lazy", false, "detach now, clean up when no longer busy (umount -l)")
		pos, code, ok := c.Parse(fs, args, stderr)
		if !ok {
			return code
		}
		if len(pos) != 1 {
			return c.UsageError(stderr)
		}
		if err := UnmountDir(pos[0], *lazy); err != nil {
			return Fail(c, stderr, err)
		}
		return 0
	}
	return c
}

// UnmountDir detaches dir: directly as root, else through fusermount3.
func UnmountDir(dir string, lazy bool) error {
	flags := 0
	if lazy {
		flags = syscall.MNT_DETACH
	}
	if os.Geteuid() == 0 {
		err := syscall.Unmount(dir, flags)
		switch err {
		case nil:
			return nil
		case syscall.EINVAL:
			return fmt.Errorf("%s is not mounted", dir)
		case syscall.EPERM:
		default:
			return fmt.Errorf("unmount %s: %v", dir, err)
		}
	}
	args := []string{"-u", dir}
	if lazy {
		args = []string{"-u", "-z", dir}
	}
	out, err := exec.Command("fusermount3", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Help is `kfs help [COMMAND|xattrs]` over a program's commands; usage
// prints the program's own usage.
func Help(t Table, usage func(io.Writer)) *Command {
	return &Command{Name: "help", Summary: "help on a command, or on a topic: kfs help xattrs", Run: func(args []string, stdout, stderr io.Writer) int {
		if len(args) == 0 {
			usage(stdout)
			return 0
		}
		switch args[0] {
		case "xattrs", "xattr", "attributes":
			fmt.Fprint(stdout, xattrHelp)
			return 0
		}
		if c := t.Lookup(args[0]); c != nil {
			if c.Help != nil {
				c.Help(stdout)
				return 0
			}
			fs := c.Flags(stdout)
			c.Parse(fs, []string{"--help"}, stderr)
			return 0
		}
		msg := fmt.Sprintf("kfs help: no help on %q", args[0])
		if s := Suggest(args[0], append(t.Names(), "xattrs")); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		fmt.Fprintln(stderr, msg+"; try kfs help xattrs or kfs --help")
		return 2
	}}
}

const xattrHelp = `Extended attributes: what S3 keeps beside the bytes, with setfattr/getfattr.

On files (objects):
  user.s3.tag.<Key>      one tag's value
                           setfattr -n user.s3.tag.project -v kfs FILE
  user.s3.tags           the tag set, URL-query form (set replaces, remove clears)
                           setfattr -n user.s3.tags -v 'project=kfs&stage=raw' FILE
  user.s3.retention      "GOVERNANCE|COMPLIANCE RFC3339-DATE"; add " bypass" to shorten or
                         clear GOVERNANCE ("NONE bypass" clears); COMPLIANCE never shortens
                           setfattr -n user.s3.retention -v 'GOVERNANCE 2026-12-31T00:00:00Z' FILE
  user.s3.legal-hold     ON or OFF
                           setfattr -n user.s3.legal-hold -v ON FILE
  user.s3.meta.<Name>    user metadata x-amz-meta-<Name>
                           setfattr -n user.s3.meta.owner -v data-team FILE
  user.s3.content-type   Content-Type
                           setfattr -n user.s3.content-type -v text/csv FILE
  user.s3.etag, user.s3.version-id, user.s3.storage-class
                         read-only facts
                           getfattr -n user.s3.version-id FILE
  user.<anything else>   your own attributes, stored with the object (s3fs's form);
                         S3 allows 2 KiB of metadata per object in all (values are stored
                         base64): past it setfattr answers E2BIG/ENOSPC and changes nothing
                           setfattr -n user.checksum -v abc123 FILE

On bucket directories (a bucket mount's root, or each bucket of an all-buckets mount):
  user.s3.versioning     Enabled or Suspended
                           setfattr -n user.s3.versioning -v Enabled /kfs_private
  user.s3.encryption     SSE-S3 or "SSE-KMS KEY-ID" (remove: no default encryption)
                           setfattr -n user.s3.encryption -v SSE-S3 /kfs_private
  user.s3.lifecycle      S3 lifecycle configuration as JSON (remove deletes it)
                           setfattr -n user.s3.lifecycle -v '{"Rules":[{"ID":"tmp","Status":"Enabled","Filter":{"Prefix":"tmp/"},"Expiration":{"Days":7}}]}' /kfs_private
  user.s3.tags, user.s3.tag.<Key>
                         bucket tags, as for files
  user.s3.object-lock    "Enabled", or with a default retention "Enabled GOVERNANCE 30d" /
                         "Enabled COMPLIANCE 1y"; set "Enabled" to clear the default (lock
                         itself is chosen when the bucket is made: kfs mb --with-lock)
                           setfattr -n user.s3.object-lock -v 'Enabled GOVERNANCE 30d' /mnt/s3/audit
  user.s3.notification   S3 notification configuration as JSON (remove clears it)
                           setfattr -n user.s3.notification -v '{"QueueConfigurations":[{"QueueArn":"arn:minio:sqs::KFS:webhook","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*"]}]}' /kfs_private
  user.s3.policy         the bucket policy JSON (remove deletes it)
                           setfattr -n user.s3.policy -v "$(cat policy.json)" /kfs_private

The user.s3.* names are read and set by name; they are not listed, so
getfattr -d, cp -a, rsync -X and tar --xattrs see (and copy) only your own
user.* attributes (and ACLs with --acl), never S3 state: a copy out of the
mount carries no tags or Content-Type onto local files, and a copy back in
sets nothing it cannot. Symlinks and special files list nothing.
  getfattr -d PATH                        your own attributes
  getfattr -n user.s3.tags PATH           one S3 attribute by name
Bad values answer EINVAL and change nothing; the reason is in the mount's log.
`
