// F1: infinite loop with IRQs off: every CPU takes the same spinlock with interrupts disabled,
// the first one takes it twice (a self-deadlock), all others spin on it forever.
#include <linux/module.h>
#include <linux/spinlock.h>
#include "grass_fault.h"

GRASS_FAULT_DELAY_PARAM;

static DEFINE_RAW_SPINLOCK(grass_f1_lock); /* raw: a real spinlock on PREEMPT_RT too */

static int grass_f1_thread(void *data)
{
	grass_fault_delay();
	raw_spin_lock_irq(&grass_f1_lock);
	raw_spin_lock(&grass_f1_lock); /* never returns: the lock is ours already */
	return 0;
}

static int __init grass_f1_init(void)
{
	pr_emerg("grass fault F1: spinlock deadlock on all CPUs, IRQs off\n");
	grass_start_on_each_cpu(grass_f1_thread, "grass_f1/%u");
	return 0;
}
module_init(grass_f1_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault F1: spinlock deadlock on all CPUs with IRQs off");
