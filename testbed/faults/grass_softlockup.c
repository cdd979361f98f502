// A soft lockup the watchdog reports: one CPU loops with preemption off for `seconds` seconds
// (default 3 watchdog periods), then lets go, so the guest survives and its log says what happened.
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include "grass_fault.h"

static unsigned int seconds = 30;
module_param(seconds, uint, 0444);
MODULE_PARM_DESC(seconds, "how long CPU 0 stays stuck");

static int grass_softlockup_thread(void *data)
{
	unsigned long until = jiffies + seconds * HZ;

	preempt_disable();
	while (time_before(jiffies, until))
		cpu_relax();
	preempt_enable();
	pr_emerg("grass fault softlockup: CPU released after %u s\n", seconds);
	return 0;
}

static int __init grass_softlockup_init(void)
{
	struct task_struct *t;

	pr_emerg("grass fault softlockup: CPU 0 stuck with preemption off for %u s\n", seconds);
	t = kthread_create_on_cpu(grass_softlockup_thread, NULL, 0, "grass_softlockup/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wake_up_process(t);
	return 0;
}
module_init(grass_softlockup_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("GRASS testbed fault: a bounded soft lockup on CPU 0");
