// An oops: a NULL pointer dereference in module init. The kernel kills insmod and goes on
// (Debian does not set panic_on_oops), leaving "BUG: kernel NULL pointer dereference" in its log.
#include <linux/module.h>

static unsigned long address; /* 0 unless told: a parameter keeps the compiler from folding it */
module_param(address, ulong, 0);

static int __init grass_oops_init(void)
{
	pr_emerg("grass fault oops: dereferencing a NULL pointer\n");
	return READ_ONCE(*(int *)address);
}
module_init(grass_oops_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault: NULL pointer dereference (oops)");
