// F5: sleeping while holding a lock. One thread takes a spinlock and sleeps with it held; then a
// thread on every CPU spins on that lock (preemption off), so the sleeper never runs again.
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/spinlock.h>
#include "grass_fault.h"

GRASS_FAULT_DELAY_PARAM;

static DEFINE_RAW_SPINLOCK(grass_f5_lock); /* raw: a real spinlock on PREEMPT_RT too */
static DECLARE_COMPLETION(grass_f5_taken);

static int grass_f5_spinner(void *data)
{
	raw_spin_lock(&grass_f5_lock);
	raw_spin_unlock(&grass_f5_lock);
	return 0;
}

static int grass_f5_sleeper(void *data)
{
	raw_spin_lock(&grass_f5_lock);
	complete(&grass_f5_taken);
	for (;;)
		schedule_timeout_uninterruptible(HZ); /* "scheduling while atomic": the bug F5 models */
	return 0;
}

static int grass_f5_start(void *data)
{
	struct task_struct *sleeper;

	grass_fault_delay();
	sleeper = kthread_run(grass_f5_sleeper, NULL, "grass_f5_sleeper");
	if (IS_ERR(sleeper))
		return PTR_ERR(sleeper);
	wait_for_completion(&grass_f5_taken);
	msleep(100); /* let the sleeper reach its sleep with the lock held */
	grass_start_on_each_cpu(grass_f5_spinner, "grass_f5/%u");
	return 0;
}

static int __init grass_f5_init(void)
{
	pr_emerg("grass fault F5: sleeping while holding a spinlock that every CPU then spins on\n");
	return PTR_ERR_OR_ZERO(kthread_run(grass_f5_start, NULL, "grass_f5_start"));
}
module_init(grass_f5_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault F5: sleep while holding a spinlock others spin on");
