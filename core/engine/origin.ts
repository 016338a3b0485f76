/**
 * Which Swarm task made a container, as the swarm's managers record it: never as the container's
 * labels say. Any container carries the labels of its image, so a Dockerfile `LABEL` (on an app's
 * image, or on the RUN containers of a classic build) can claim any label at all, the swarm's own
 * `com.docker.swarm.task.id` included. What a Dockerfile cannot set is the task record: the manager
 * keeps, for each task, the service that made it and the id of the container its node created. A
 * container is a task's only when that task names this very container.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { isNotFound, type ContainerEngine, type ServiceInfo, type TaskInfo } from './engine.js'

/** The label the swarm's executor puts on a task's container (read only to find the task to ask about). */
export const TASK_ID_LABEL = 'com.docker.swarm.task.id'

/** The task that made a container, and that task's service. */
export interface ContainerOrigin {
  task: TaskInfo
  service: ServiceInfo
}

export interface TaskOriginsOptions {
  /** A manager of the swarm: the task and service API is a manager's (a worker's engine answers 503). */
  swarm: Pick<ContainerEngine, 'inspectTask' | 'inspectService'>
  /**
   * How long a task may take to name its container, ms, default 10_000: a node reports the container
   * it created to the managers a little after creating (and starting) it.
   */
  settleMs?: number
  /** Pause between two looks at a task that names no container yet, ms, default 100. */
  pollMs?: number
  /** Containers whose answer is remembered, default 10_000 (the oldest are forgotten first). */
  max?: number
}

/**
 * The origins of containers, each found once and remembered (a container's task never changes), so
 * the services that ask at every event stay fast. An engine failure is not remembered: the next
 * question asks again.
 */
export class TaskOrigins {
  readonly #answers = new Map<string, Promise<ContainerOrigin | undefined>>()
  readonly #opts: TaskOriginsOptions
  readonly #stopper = new AbortController()
  /** Questions that went to the engine (not answered from memory). For tests. */
  asked = 0

  constructor(opts: TaskOriginsOptions) {
    this.#opts = opts
  }

  /** Gives up waits for tasks that name no container yet (they answer undefined). */
  stop(): void {
    this.#stopper.abort()
  }

  /**
   * The task and service that made container `id`, or undefined when no task of the swarm names it
   * (a plain container, a build's RUN container, a container with a forged task label, or one
   * whose task or service is gone). `labels` are the container's, read only for the task id.
   */
  of(id: string, labels: Record<string, string | undefined>): Promise<ContainerOrigin | undefined> {
    let answer = this.#answers.get(id)
    if (answer) return answer
    answer = this.#find(id, labels[TASK_ID_LABEL])
    this.#answers.set(id, answer)
    answer.catch(() => {
      if (this.#answers.get(id) === answer) this.#answers.delete(id)
    })
    const max = this.#opts.max ?? 10_000
    for (const old of this.#answers.keys()) {
      if (this.#answers.size <= max) break
      this.#answers.delete(old)
    }
    return answer
  }

  async #find(id: string, taskId: string | undefined): Promise<ContainerOrigin | undefined> {
    if (!taskId || !/^[a-z0-9]{1,64}$/.test(taskId)) return undefined
    this.asked++
    const { swarm } = this.#opts
    const deadline = Date.now() + (this.#opts.settleMs ?? 10_000)
    let task: TaskInfo
    for (;;) {
      try {
        task = await swarm.inspectTask(taskId)
      } catch (err) {
        if (isNotFound(err)) return undefined
        throw err
      }
      if (task.containerId) break
      if (Date.now() > deadline || this.#stopper.signal.aborted) return undefined
      await sleep(this.#opts.pollMs ?? 100, undefined, { signal: this.#stopper.signal }).catch(() => {})
    }
    if (task.containerId !== id) return undefined
    try {
      return { task, service: await swarm.inspectService(task.serviceId) }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }
}
