// A course's first job (its welcome plan) is known only from the POST that created it,
// and GET /v1/courses/{id} answers 409 until the plan is stored: keep the job's events
// URL so the course page can follow it, also after a reload.

export interface PendingJob {
  job_id: string;
  events_url: string;
  kind: string;
}

const key = (courseId: string) => `lectern.job.${courseId}`;

export function rememberJob(courseId: string, job: PendingJob): void {
  try {
    sessionStorage.setItem(key(courseId), JSON.stringify(job));
  } catch {
    // storage blocked: the router state still carries it
  }
}

export function recallJob(courseId: string): PendingJob | null {
  try {
    const raw = sessionStorage.getItem(key(courseId));
    if (!raw) return null;
    const job = JSON.parse(raw) as PendingJob;
    return typeof job?.events_url === "string" && typeof job?.job_id === "string" ? job : null;
  } catch {
    return null;
  }
}

export function forgetJob(courseId: string): void {
  try {
    sessionStorage.removeItem(key(courseId));
  } catch {
    // nothing to do
  }
}
