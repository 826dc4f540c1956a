import Foundation
import Pipeline

/// Where a job is in its life. `succeeded`, `failed` and `cancelled` are final.
public enum JobStatus: String, Sendable, Codable {
    case queued, running, succeeded, failed, cancelled

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Progress as the page shows it: the stage, step n of N, the fraction done and the time left.
public struct JobProgress: Sendable, Codable, Equatable {
    public var stage: GenerationStage?
    public var step: Int
    public var totalSteps: Int
    /// 0...1; 1 exactly when the job has succeeded.
    public var fraction: Double
    public var elapsedSeconds: Double
    public var etaSeconds: Double?

    static let none = JobProgress(stage: nil, step: 0, totalSteps: 0, fraction: 0, elapsedSeconds: 0, etaSeconds: nil)

    init(stage: GenerationStage?, step: Int, totalSteps: Int, fraction: Double, elapsedSeconds: Double, etaSeconds: Double?) {
        self.stage = stage
        self.step = step
        self.totalSteps = totalSteps
        self.fraction = fraction
        self.elapsedSeconds = elapsedSeconds
        self.etaSeconds = etaSeconds
    }

    /// Denoising is nearly all of the time, so the fraction is the share of denoising steps done;
    /// the stages after it hold just under 1 until the server has written the file.
    init(_ progress: GenerationProgress) {
        let stepsDone = progress.totalSteps > 0 ? Double(progress.step) / Double(progress.totalSteps) : 0
        let fraction: Double = switch progress.stage {
        case .loading, .encodingPrompt, .encodingStyle, .encodingContent: 0
        case .denoising: min(stepsDone, 0.99)
        case .decoding, .saving, .done: 0.99  // 1 only once the file is written
        }
        self.init(stage: progress.stage, step: progress.step, totalSteps: progress.totalSteps, fraction: fraction,
                  elapsedSeconds: progress.elapsedSeconds, etaSeconds: progress.etaSeconds)
    }
}

/// A job as the API reports it.
public struct JobSnapshot: Sendable, Codable, Equatable {
    public var id: String
    public var status: JobStatus
    /// 1 for the next job to run; nil unless queued.
    public var queuePosition: Int?
    public var progress: JobProgress
    public var parameters: JobParameters
    /// URLs of the uploaded references: content first (if any), then styles.
    public var contentImageURL: String?
    public var styleImageURLs: [String]
    /// The result PNG, once the job has succeeded.
    public var imageURL: String?
    /// The result's file name in the output folder (e.g. `0003-1234.png`), for downloads.
    public var fileName: String?
    public var error: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Set in the history list when the prompt there is cut short (`GET /api/jobs/{id}` has all of it).
    public var promptTruncated: Bool?

    /// Prompts in the history list are cut to this many characters, so a full history stays a small response.
    static let listedPromptLength = 200

    /// The job as the history list shows it.
    func listed() -> JobSnapshot {
        guard parameters.prompt.count > Self.listedPromptLength else { return self }
        var listed = self
        listed.parameters.prompt = String(parameters.prompt.prefix(Self.listedPromptLength))
        listed.promptTruncated = true
        return listed
    }
}

/// The server's record of one job (internal: paths never leave the server). Its mutable state is
/// touched only under the JobQueue's lock.
final class Job: @unchecked Sendable {
    let id: String
    let parameters: JobParameters
    /// What the generator runs; its image paths point into the server's upload folder.
    let request: GenerationRequest
    let cancellation = CancellationFlag()
    let createdAt = Date()
    var status = JobStatus.queued
    var progress = JobProgress.none
    var startedAt: Date?
    var finishedAt: Date?
    var error: String?
    var resultFile: URL?
    /// Set once the image is made and is being written: from then on a cancel is too late.
    var isSaving = false

    init(id: String, parameters: JobParameters, request: GenerationRequest) {
        self.id = id
        self.parameters = parameters
        self.request = request
    }

    var inputFiles: [URL] {
        ([request.contentImage].compactMap { $0 } + request.styleImages).map { URL(fileURLWithPath: $0) }
    }

    func snapshot(queuePosition: Int?) -> JobSnapshot {
        let base = "/api/jobs/\(id)"
        return JobSnapshot(
            id: id, status: status, queuePosition: queuePosition, progress: progress, parameters: parameters,
            contentImageURL: request.contentImage == nil ? nil : "\(base)/inputs/content",
            styleImageURLs: request.styleImages.indices.map { "\(base)/inputs/style\($0 + 1)" },
            imageURL: status == .succeeded ? "\(base)/image" : nil,
            fileName: resultFile?.lastPathComponent,
            error: error, createdAt: createdAt, startedAt: startedAt, finishedAt: finishedAt)
    }
}
