import SettlementModel

/// The national catalog a tier validates uploads against: drug codes, medical service items
/// and diagnoses, with a version. Generated deterministically from a seed at the national
/// node and downloaded (1301) by every node after it signs in.
public struct Catalog: Equatable, Sendable {
    public var version: String
    public var drugs: Set<String>
    public var services: Set<String>
    public var diagnoses: Set<String>

    public init(version: String, drugs: Set<String>, services: Set<String>, diagnoses: Set<String>) {
        self.version = version
        self.drugs = drugs
        self.services = services
        self.diagnoses = diagnoses
    }

    /// The national catalog of `version`: 1,000 drugs, 400 service items, 600 diagnoses.
    /// Small enough for one 1301 answer, large enough that a random well-formed code is
    /// almost never in it.
    public static func national(version: String = "V2026.11", seed: UInt64 = 1_301) -> Catalog {
        var random = SplitMix64(seed: seed)
        let alphanumeric = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var drugs = Set<String>()
        while drugs.count < 1_000 {
            let length = random.next() % 2 == 0 ? 20 : 23
            let kind: Character = random.next() % 3 == 0 ? "Z" : "X"   // X western, Z Chinese patent medicine
            drugs.insert(String(kind) + String((1..<length).map { _ in alphanumeric[Int(random.next() % 36)] }))
        }
        var services = Set<String>()
        while services.count < 400 {
            services.insert("00" + String((0..<13).map { _ in Character(String(random.next() % 10)) }))
        }
        var diagnoses = Set<String>()
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        while diagnoses.count < 600 {
            diagnoses.insert("\(letters[Int(random.next() % 26)])\(random.next() % 10)\(random.next() % 10).\(random.next() % 10)\(random.next() % 10)\(random.next() % 10)")
        }
        return Catalog(version: version, drugs: drugs, services: services, diagnoses: diagnoses)
    }

    public var output: CatalogOutput {
        var out = CatalogOutput()
        out.version = version
        out.drugCodes = drugs.sorted()
        out.serviceCodes = services.sorted()
        out.diagnosisCodes = diagnoses.sorted()
        return out
    }

    public init(_ output: CatalogOutput) {
        self.init(version: output.version, drugs: Set(output.drugCodes), services: Set(output.serviceCodes),
                  diagnoses: Set(output.diagnosisCodes))
    }
}

public typealias CatalogOutput = Settlenet_V1_CatalogOutput
public typealias CatalogInput = Settlenet_V1_CatalogInput
public typealias UploadRecord = Settlenet_V1_UploadRecord
public typealias UploadInput = Settlenet_V1_UploadInput
public typealias UploadOutput = Settlenet_V1_UploadOutput
public typealias UploadReject = Settlenet_V1_UploadReject
public typealias FeeDetail = Settlenet_V1_FeeDetail
