// How a detection is named to the user (the Faults view, the detections query's output).
import type { Detection } from './detections';

/** The class of a detection as shown: the hang class (F1–F6) when there is one, else the detector. */
export function detectionTitle(d: Detection): string {
  const hangClass = (d as Detection & { hangClass?: string }).hangClass;
  return hangClass ? `${d.detector} ${hangClass}` : d.detector;
}
