import Foundation
import Pipeline

/// The generator is made on first use, on the generation thread, and then kept: loading a model is
/// slow and memory-bound, so it happens once per server.
public typealias GeneratorFactory = @Sendable () throws -> any ImageGenerator

/// Jobs, run one at a time on one thread (generation is memory-bound: two at once would only
/// thrash), with a bounded number of unfinished jobs.
///
/// Capacity counts every unfinished job, waiting or running: with capacity 8, a burst of 20
/// submissions into an idle server gets exactly 8 accepted and 12 refused, whatever the timing.
/// All state sits behind one lock; progress observers are AsyncStreams fed under it (yielding
/// never blocks).
final class JobQueue: @unchecked Sendable {
    enum SubmitError: Error { case full(retryAfterSeconds: Int) }
    enum CancelOutcome { case cancelled(JobSnapshot), alreadyFinished(JobSnapshot), tooLate(JobSnapshot), notFound }

    let capacity: Int
    private let historyLimit: Int
    private let outputRoot: URL
    private let uploads: UploadFolder
    private let factory: GeneratorFactory
    private let worker = DispatchQueue(label: "uso.serve.generation", qos: .userInitiated)

    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    /// Every known job id, oldest first (the history).
    private var order: [String] = []
    private var waiting: [String] = []
    private var running: String?
    /// Slots taken by submissions whose files are still being written.
    private var reserved = 0
    private var observers: [String: [UUID: AsyncStream<JobSnapshot>.Continuation]] = [:]
    /// Seconds the finished jobs took, for Retry-After estimates.
    private var recentDurations: [Double] = []
    /// Touched only on the worker thread.
    private var generator: (any ImageGenerator)?

    init(capacity: Int, historyLimit: Int, outputRoot: URL, uploads: UploadFolder, factory: @escaping GeneratorFactory) {
        self.capacity = capacity
        self.historyLimit = historyLimit
        self.outputRoot = outputRoot
        self.uploads = uploads
        self.factory = factory
    }

    // MARK: Submitting

    /// Stores the references under generated names and queues the job, or refuses when full.
    /// `template` carries the server-wide settings (model type, precision, ...).
    func submit(_ submission: JobSubmission, template: GenerationRequest) throws -> JobSnapshot {
        let id = UUID().uuidString.lowercased()
        lock.lock()
        let unfinished = waiting.count + reserved + (running == nil ? 0 : 1)
        guard unfinished < capacity else {
            let retryAfter = retryAfterLocked()
            lock.unlock()
            throw SubmitError.full(retryAfterSeconds: retryAfter)
        }
        // Reserve the slot before the (slower) file writes so concurrent submissions cannot overfill.
        reserved += 1
        lock.unlock()

        let stored: (content: URL?, styles: [URL])
        do {
            stored = try uploads.store(submission, jobID: id)
        } catch {
            lock.withLock { reserved -= 1 }
            throw error
        }
        let p = submission.parameters
        var request = template
        request.prompt = p.prompt
        request.contentImage = stored.content?.path
        request.styleImages = stored.styles.map(\.path)
        request.width = p.width
        request.height = p.height
        request.steps = p.steps
        request.guidance = p.guidance
        request.seed = p.seed
        request.contentReferenceSize = p.contentReferenceSize
        request.stepCache = p.stepCache
        let job = Job(id: id, parameters: p, request: request)

        lock.lock()
        reserved -= 1
        jobs[id] = job
        order.append(id)
        waiting.append(id)
        let snapshot = snapshotLocked(job)
        startNextLocked()
        lock.unlock()
        return snapshot
    }

    // MARK: Reading

    func snapshot(_ id: String) -> JobSnapshot? {
        lock.withLock { jobs[id].map(snapshotLocked) }
    }

    /// Newest first, prompts cut short.
    func history() -> [JobSnapshot] {
        lock.withLock { order.reversed().compactMap { jobs[$0].map { snapshotLocked($0).listed() } } }
    }

    func resultFile(_ id: String) -> URL? {
        lock.withLock { jobs[id]?.resultFile }
    }

    /// The stored content image, or the style image at `styleIndex`.
    func inputFile(_ id: String, content: Bool, styleIndex: Int = 0) -> URL? {
        lock.withLock {
            guard let request = jobs[id]?.request else { return nil }
            if content { return request.contentImage.map { URL(fileURLWithPath: $0) } }
            return request.styleImages.indices.contains(styleIndex) ? URL(fileURLWithPath: request.styleImages[styleIndex]) : nil
        }
    }

    var counts: (waiting: Int, running: Int) {
        lock.withLock { (waiting.count, running == nil ? 0 : 1) }
    }

    /// Snapshots of the job from now on: the current one first, then each change; the stream ends
    /// after the final one. Nil for an unknown id.
    func events(_ id: String) -> AsyncStream<JobSnapshot>? {
        let observerID = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: JobSnapshot.self, bufferingPolicy: .bufferingNewest(64))
        lock.lock()
        defer { lock.unlock() }
        guard let job = jobs[id] else { return nil }
        continuation.yield(snapshotLocked(job))
        if job.status.isFinal {
            continuation.finish()
            return stream
        }
        observers[id, default: [:]][observerID] = continuation
        // Termination can fire inside `finish()` while the lock is held, so unregister later.
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            DispatchQueue.global().async { self.lock.withLock { _ = self.observers[id]?.removeValue(forKey: observerID) } }
        }
        return stream
    }

    /// How many event streams follow the job (tests wait for a subscriber before releasing a job).
    func observerCount(_ id: String) -> Int {
        lock.withLock { observers[id]?.count ?? 0 }
    }

    // MARK: Cancelling

    /// A waiting job is dropped at once; a running one stops at its next step, or, if its image is
    /// already made, is not saved. Once saving has begun it is too late: the answer says so rather
    /// than accepting a cancel it cannot honour.
    func cancel(_ id: String) -> CancelOutcome {
        lock.lock()
        defer { lock.unlock() }
        guard let job = jobs[id] else { return .notFound }
        switch job.status {
        case .queued:
            waiting.removeAll { $0 == id }
            finishLocked(job, status: .cancelled, error: nil)
        case .running:
            if job.isSaving { return .tooLate(snapshotLocked(job)) }
            job.cancellation.cancel()
        case .succeeded, .failed, .cancelled:
            return .alreadyFinished(snapshotLocked(job))
        }
        return .cancelled(snapshotLocked(job))
    }

    /// Stops everything: waiting jobs are cancelled and the running one is asked to stop.
    func shutdown() {
        lock.withLock {
            for id in waiting { if let job = jobs[id] { finishLocked(job, status: .cancelled, error: "the server stopped") } }
            waiting.removeAll()
            if let id = running { jobs[id]?.cancellation.cancel() }
        }
    }

    // MARK: Running (the lock is held in every `...Locked` method)

    private func startNextLocked() {
        guard running == nil, !waiting.isEmpty else { return }
        let id = waiting.removeFirst()
        guard let job = jobs[id] else { return }
        running = id
        job.status = .running
        job.startedAt = Date()
        job.progress = JobProgress(GenerationProgress(stage: .loading))
        publishLocked(job)
        for waitingID in waiting {  // everyone behind moved up one place
            if let waitingJob = jobs[waitingID] { publishLocked(waitingJob) }
        }
        worker.async { self.run(job) }
    }

    /// On the worker thread.
    private func run(_ job: Job) {
        let started = Date()
        do {
            let generator = try self.generator ?? factory()
            self.generator = generator
            let result = try generator.generate(job.request, cancellation: job.cancellation) { [weak self] progress in
                self?.lock.withLock {
                    job.progress = JobProgress(progress)
                    self?.publishLocked(job)
                }
            }
            // A cancel accepted while the image was being made (the decoder does not look) wins.
            let cancelled = lock.withLock {
                job.isSaving = !job.cancellation.isCancelled
                return !job.isSaving
            }
            if cancelled { throw GenerationError.cancelled }
            let writer = OutputWriter.dated(root: outputRoot)
            var record = RunRecord(request: result.request, savePath: outputRoot.path)
            record.guidanceGiven = true
            let file = try writer.write(result, record: record, stem: try writer.nextStem(seed: result.request.seed))
            lock.withLock {
                job.resultFile = file
                job.progress = JobProgress(stage: .done, step: job.progress.totalSteps, totalSteps: job.progress.totalSteps,
                                           fraction: 1, elapsedSeconds: Date().timeIntervalSince(started), etaSeconds: 0)
                recentDurations = Array((recentDurations + [Date().timeIntervalSince(started)]).suffix(10))
                finishLocked(job, status: .succeeded, error: nil)
            }
        } catch GenerationError.cancelled {
            lock.withLock { finishLocked(job, status: .cancelled, error: nil) }
        } catch {
            lock.withLock { finishLocked(job, status: .failed, error: "\(error)") }
        }
        lock.withLock {
            running = nil
            startNextLocked()
        }
    }

    private func finishLocked(_ job: Job, status: JobStatus, error: String?) {
        job.status = status
        job.error = error
        job.finishedAt = Date()
        publishLocked(job)
        observers[job.id]?.values.forEach { $0.finish() }
        observers[job.id] = nil
        forgetOldJobsLocked()
    }

    /// Keeps the history bounded: the oldest finished jobs go, with their uploaded references
    /// (their result images stay in the output folder).
    private func forgetOldJobsLocked() {
        var excess = order.count - historyLimit
        guard excess > 0 else { return }
        order.removeAll { id in
            guard excess > 0, let job = jobs[id], job.status.isFinal else { return false }
            excess -= 1
            jobs[id] = nil
            uploads.remove(job.inputFiles)
            return true
        }
    }

    private func publishLocked(_ job: Job) {
        guard let observers = observers[job.id], !observers.isEmpty else { return }
        let snapshot = snapshotLocked(job)
        for continuation in observers.values { continuation.yield(snapshot) }
    }

    private func snapshotLocked(_ job: Job) -> JobSnapshot {
        let position = job.status == .queued ? waiting.firstIndex(of: job.id).map { $0 + 1 } : nil
        return job.snapshot(queuePosition: position)
    }

    /// Roughly when a slot frees up: the running job's remaining time if known, else the mean of
    /// recent jobs (30 s before any has finished).
    private func retryAfterLocked() -> Int {
        let mean = recentDurations.isEmpty ? 30 : recentDurations.reduce(0, +) / Double(recentDurations.count)
        let eta = running.flatMap { jobs[$0]?.progress.etaSeconds } ?? mean
        return max(1, Int(eta.rounded(.up)))
    }
}
