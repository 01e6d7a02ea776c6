import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel
import Testing

@Suite struct DirtyDataGeneratorTests {
    /// The weights of the `load.uploads.dirty.kinds` example in docs/DATA_QUALITY.md.
    static let weights: [String: Double] = ["missing_field": 0.2, "bad_format": 0.2, "unknown_code": 0.2, "bad_admdvs": 0.1,
                                            "amount_mismatch": 0.1, "date_order": 0.1, "duplicate": 0.1]
    static let catalog = Catalog.national()

    static func minimal() throws -> Topology {
        try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
    }

    static func generator(_ topology: Topology, rate: Double = 0.25, kinds: [String: Double] = weights, seed: UInt64 = 20_260_301,
                          batchSize: Int = 100, lag: Int = 3) -> DirtyDataGenerator {
        DirtyDataGenerator(topology: topology, catalog: catalog, batchSize: batchSize, dirtyRate: rate, kinds: kinds, seed: seed,
                           duplicateLagBatches: lag)
    }

    static func batches(_ generator: DirtyDataGenerator, count: Int) -> [UploadBatchPlan] {
        var generator = generator
        return (0..<count).map { _ in generator.nextBatch() }
    }

    static func validators(_ topology: Topology) -> [DivisionCode: UploadValidator] {
        let routing = topology.routingTable
        var validators: [DivisionCode: UploadValidator] = [:]
        for county in topology.counties.map(\.id) {
            validators[county] = UploadValidator(county: county, institutions: Set(topology.institutions(of: county)), routing: routing,
                                                 catalog: catalog)
        }
        return validators
    }

    @Test func injectedRateAndKindSharesFollowTheConfiguration() throws {
        let plans = Self.batches(Self.generator(try Self.minimal()), count: 200)
        let records = plans.flatMap(\.records)
        #expect(plans.allSatisfy { $0.records.count == 100 })
        let dirty = records.filter { $0.dirtyKind != nil }
        let injected = Double(dirty.count) / Double(records.count)
        #expect(abs(injected - 0.25) <= 0.02, "injected rate \(injected)")
        for kind in DirtyDataGenerator.kinds {
            let share = Double(dirty.filter { $0.dirtyKind == kind }.count) / Double(dirty.count)
            #expect(abs(share - Self.weights[kind]!) <= 0.03, "\(kind): share \(share), weight \(Self.weights[kind]!)")
        }
        #expect(Set(DirtyDataGenerator.kinds) == Set(UploadRules.all.map(\.kind)))
    }

    @Test func cleanRecordsPassAndDirtyRecordsFailWithTheirRule() throws {
        let topology = try Self.minimal()
        let validators = Self.validators(topology)
        var fields: [String: Set<String>] = [:]
        for plan in Self.batches(Self.generator(topology), count: 200) {
            #expect(topology.institutions(of: plan.county).contains(plan.institution))
            let validator = try #require(validators[plan.county])
            for generated in plan.records {
                let violation = validator.check(generated.record)
                switch generated.dirtyKind {
                case nil:
                    #expect(violation == nil, "clean record \(generated.record.setlID) refused: \(String(describing: violation))")
                    #expect(generated.expectedRule == nil && generated.expectedTier == nil)
                    #expect(generated.record.mdtrtareaAdmvs == plan.county.value && generated.record.fixmedinsCode == plan.institution)
                    #expect(generated.record.admDate.hasPrefix("2026-"))
                    #expect((1...6).contains(generated.record.details.count))
                case "duplicate":
                    // Valid here: only the tier where it meets its original can refuse it.
                    #expect(violation == nil, "duplicate \(generated.record.setlID) refused: \(String(describing: violation))")
                default:
                    #expect(violation?.rule.id == generated.expectedRule,
                            "\(generated.dirtyKind!) record fails with \(String(describing: violation)), expected \(generated.expectedRule ?? "-")")
                    #expect(generated.expectedTier == .county)
                    #expect(UploadRules.rule(id: generated.expectedRule ?? "")?.kind == generated.dirtyKind)
                    if let violation { fields[generated.dirtyKind!, default: []].insert(violation.field) }
                }
            }
        }
        // Each kind is injected in several ways, not one field every time (R106 has only dscg_date).
        for kind in DirtyDataGenerator.kinds where kind != "duplicate" && kind != "date_order" {
            #expect((fields[kind]?.count ?? 0) >= 2, "\(kind) only ever breaks \(fields[kind] ?? [])")
        }
        #expect((fields["missing_field"]?.count ?? 0) >= 8)
        #expect((fields["bad_format"]?.count ?? 0) >= 5)
    }

    @Test func everyDuplicateHasExactlyOneEarlierCleanOriginal() throws {
        let topology = try Self.minimal()
        let routing = topology.routingTable
        let lag = 3
        var originals: [String: (batch: Int, record: UploadRecord)] = [:]
        var duplicated = Set<String>()
        var tiers: [DataTier: Int] = [:]
        for (number, plan) in Self.batches(Self.generator(topology, lag: lag), count: 200).enumerated() {
            for generated in plan.records {
                let setlID = generated.record.setlID
                switch generated.dirtyKind {
                case nil:
                    #expect(originals[setlID] == nil, "setl_id \(setlID) generated twice")
                    originals[setlID] = (number, generated.record)
                case "duplicate":
                    let original = try #require(originals[setlID], "duplicate \(setlID) has no clean original")
                    #expect(number - original.batch >= lag, "duplicate \(setlID) copies batch \(original.batch) in batch \(number)")
                    #expect(duplicated.insert(setlID).inserted, "\(setlID) duplicated twice")
                    // The copy is the original uploaded by this batch's institution.
                    var expected = original.record
                    expected.mdtrtareaAdmvs = plan.county.value
                    expected.fixmedinsCode = plan.institution
                    #expect(generated.record == expected)
                    let route = routing.routeClass(treatment: DivisionCode(original.record.mdtrtareaAdmvs)!, insured: plan.county)
                    let tier: DataTier = switch route {
                    case .local: .county
                    case .intraCity: .city
                    case .intraProvince: .provincial
                    case .crossProvince, nil: .national
                    }
                    #expect(generated.expectedTier == tier)
                    #expect(generated.expectedRule == UploadRules.duplicate(at: tier).id)
                    tiers[tier, default: 0] += 1
                default:
                    #expect(originals[setlID] == nil, "dirty record reuses the setl_id of a clean one")
                }
            }
        }
        // In the minimal topology every tier is where some pair of copies meets.
        #expect(Set(tiers.keys) == Set(DataTier.allCases), "duplicates met only at \(tiers)")
        #expect(duplicated.count > 300)
    }

    @Test func duplicatesWaitForOldEnoughRecordsAndNeverRepeat() throws {
        // Everything dirty, everything a duplicate, lag 2, 10 records a batch: batches 0 and 1
        // have nothing to copy (sent clean), batches 2 and 3 copy their 20 records, batch 4
        // again has nothing old enough left (batches 2 and 3 held no clean record).
        let plans = Self.batches(Self.generator(try Self.minimal(), rate: 1, kinds: ["duplicate": 1], batchSize: 10, lag: 2), count: 5)
        let kinds = plans.map { plan in plan.records.map { $0.dirtyKind ?? "clean" } }
        #expect(kinds[0] == Array(repeating: "clean", count: 10))
        #expect(kinds[1] == Array(repeating: "clean", count: 10))
        #expect(kinds[2] == Array(repeating: "duplicate", count: 10))
        #expect(kinds[3] == Array(repeating: "duplicate", count: 10))
        #expect(kinds[4] == Array(repeating: "clean", count: 10))
        let copied = plans[2...3].flatMap(\.records).map(\.record.setlID)
        #expect(Set(copied) == Set(plans[0...1].flatMap(\.records).map(\.record.setlID)))
    }

    @Test func rateAndWeightsAreHonouredAtTheExtremes() throws {
        let topology = try Self.minimal()
        let clean = Self.batches(Self.generator(topology, rate: 0), count: 20).flatMap(\.records)
        #expect(clean.allSatisfy { $0.dirtyKind == nil })
        let onlyDates = Self.batches(Self.generator(topology, rate: 1, kinds: ["date_order": 3, "bad_format": 0]), count: 5).flatMap(\.records)
        #expect(onlyDates.allSatisfy { $0.dirtyKind == "date_order" && $0.expectedRule == "DQ-R106" })
        // No positive weight: every kind equally likely. With every record dirty there is no clean
        // original to copy, so a drawn duplicate becomes another kind and the rate stays 1.
        let even = Self.batches(Self.generator(topology, rate: 1, kinds: [:]), count: 50).flatMap(\.records)
        #expect(Set(even.compactMap(\.dirtyKind)) == Set(DirtyDataGenerator.kinds).subtracting(["duplicate"]))
        #expect(even.allSatisfy { $0.dirtyKind != nil })
    }

    @Test func theSameSeedGivesTheSameBatches() throws {
        let topology = try Self.minimal()
        let first = Self.batches(Self.generator(topology, seed: 7), count: 40)
        let second = Self.batches(Self.generator(topology, seed: 7), count: 40)
        let other = Self.batches(Self.generator(topology, seed: 8), count: 40)
        #expect(first == second)
        #expect(first != other)
        #expect(first.map(\.county) != other.map(\.county))
    }

    // MARK: - Governance loop

    static func governed(_ topology: Topology, fix: Double, residual: Double) -> DirtyDataGenerator {
        DirtyDataGenerator(topology: topology, catalog: catalog, batchSize: 100, dirtyRate: 0.25, kinds: weights, seed: 7,
                           duplicateLagBatches: 3, governance: UploadLoad.Governance(fixProbability: fix, residualShare: residual))
    }

    /// Dirty share of `institution`'s records over `count` batches.
    static func dirtyShare(of institution: String, _ generator: inout DirtyDataGenerator, count: Int) -> Double {
        var dirty = 0, total = 0
        for _ in 0..<count {
            let plan = generator.nextBatch()
            guard plan.institution == institution else { continue }
            total += plan.records.count
            dirty += plan.records.filter(\.isDirty).count
        }
        return total == 0 ? 0 : Double(dirty) / Double(total)
    }

    @Test func aFixedCauseKeepsOnlyItsResidualShareAndOtherInstitutionsAreUntouched() throws {
        var generator = Self.governed(try Self.minimal(), fix: 1, residual: 0.2)
        let fixer = generator.nextBatch().institution
        #expect(abs(generator.dirtyRate(of: fixer) - 0.25) < 1e-9)
        for kind in DirtyDataGenerator.kinds {
            let fixed = generator.feedback(institution: fixer, kind: kind)
            #expect(fixed)
        }
        let again = generator.feedback(institution: fixer, kind: "bad_format")
        #expect(!again, "a cause is fixed once")
        #expect(generator.causesFixed == 7)
        #expect(abs(generator.dirtyRate(of: fixer) - 0.05) < 1e-9)
        let other = try #require(Self.minimal().counties.flatMap { try! Self.minimal().institutions(of: $0.id) }.first { $0 != fixer })
        #expect(abs(generator.dirtyRate(of: other) - 0.25) < 1e-9)
        // And the records follow: about 5% dirty at the fixer (drawn, so with a margin).
        let share = Self.dirtyShare(of: fixer, &generator, count: 3_000)
        #expect(share > 0.03 && share < 0.07, "dirty share after every fix: \(share)")
    }

    @Test func withoutAFixProbabilityFeedbackChangesNothing() throws {
        var generator = Self.governed(try Self.minimal(), fix: 0, residual: 0.2)
        let institution = generator.nextBatch().institution
        var fixes = 0
        for _ in 0..<100 { for kind in DirtyDataGenerator.kinds where generator.feedback(institution: institution, kind: kind) { fixes += 1 } }
        #expect(fixes == 0)
        #expect(generator.causesFixed == 0 && abs(generator.dirtyRate(of: institution) - 0.25) < 1e-9)
    }

    @Test func fixesAreDrawnAtTheConfiguredProbability() throws {
        var generator = Self.governed(try Self.minimal(), fix: 0.3, residual: 0)
        let institutions = try Self.minimal().counties.flatMap { try Self.minimal().institutions(of: $0.id) }
        var fixed = 0
        for institution in institutions { for kind in DirtyDataGenerator.kinds where generator.feedback(institution: institution, kind: kind) { fixed += 1 } }
        let share = Double(fixed) / Double(institutions.count * DirtyDataGenerator.kinds.count)
        #expect(share > 0.15 && share < 0.45, "fixed on first feedback: \(share) (expected about 0.3)")
    }

    @Test func correctionsAreCleanAndNameTheRecordTheyReplace() throws {
        let topology = try Self.minimal()
        let validators = Self.validators(topology)
        var generator = Self.governed(topology, fix: 0, residual: 0)
        var checked: [String: Int] = [:]
        for _ in 0..<60 {
            let plan = generator.nextBatch()
            for generated in plan.records {
                let correction = generator.correction(of: generated, county: plan.county, institution: plan.institution)
                guard let kind = generated.dirtyKind else {
                    #expect(correction == nil)
                    continue
                }
                let corrected = try #require(correction)
                #expect(validators[plan.county]!.check(corrected) == nil, "\(kind): the correction breaks a rule")
                #expect(corrected.fixmedinsCode == plan.institution && corrected.mdtrtareaAdmvs == plan.county.value)
                if kind == "duplicate" {
                    // The institution's own record instead of the copy: a new identity naming the copy.
                    #expect(corrected.correctsSetlID == generated.record.setlID && corrected.setlID != generated.record.setlID)
                } else {
                    #expect(corrected.correctsSetlID == corrected.setlID)
                }
                checked[kind, default: 0] += 1
            }
        }
        #expect(Set(checked.keys) == Set(DirtyDataGenerator.kinds), "kinds corrected: \(checked)")
    }

    @Test func everyRuleNamesTheKindOfDefectBehindIt() {
        for rule in UploadRules.all { #expect(DirtyDataGenerator.kind(ofRule: rule.id) == rule.kind) }
        #expect(DirtyDataGenerator.kind(ofRule: "DQ-R999") == nil)
    }
}

