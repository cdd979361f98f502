// F4: a resource never released. /dev/grass_f4 is a character device whose read() waits in
// io_schedule() for a completion that never comes, so its readers sit in D state and count as
// I/O wait on idle CPUs.
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sched.h>

static ssize_t grass_f4_read(struct file *file, char __user *buf, size_t len, loff_t *pos)
{
	for (;;) {
		set_current_state(TASK_UNINTERRUPTIBLE);
		io_schedule(); /* nobody ever wakes us; a spurious wake-up just waits again */
	}
	return 0;
}

static const struct file_operations grass_f4_fops = {
	.owner = THIS_MODULE,
	.read = grass_f4_read,
};

static struct miscdevice grass_f4_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "grass_f4",
	.fops = &grass_f4_fops,
};

static int __init grass_f4_init(void)
{
	pr_emerg("grass fault F4: /dev/grass_f4 blocks its readers forever in io_schedule()\n");
	return misc_register(&grass_f4_dev);
}
module_init(grass_f4_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault F4: reads that wait forever in io_schedule()");
