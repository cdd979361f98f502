// How a detection is named to the user (the Faults view, the detections query's output).
import { hangClasses } from '../rdma/protocol/wire.generated';
import type { Detection } from './detections';

/** The class of a detection as shown: the hang class (F1–F6) when there is one, else the detector. */
export function detectionTitle(d: Detection): string {
  const hangClass = (d as Detection & { hangClass?: string }).hangClass;
  return hangClass ? `${d.detector} ${hangClass}` : d.detector;
}

/** Every hang class with what it means (the words of grass/protocol.h, through the generated wire table). */
export const HANG_CLASSES: readonly { name: string; meaning: string }[] = hangClasses;

/** What a hang class means (`F1` → `CPUs stuck with interrupts off`); undefined for a name that is none. */
export function hangClassMeaning(name: string): string | undefined {
  return hangClasses.find((c) => c.name === name)?.meaning;
}
